"""The model gate: bounded concurrency off the event loop, waits or a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Generator, Iterator
from functools import partial

import pytest

from locara_wyoming.workers import ModelBusyError, ModelWorker, Priority, Urgency


async def test_calls_run_in_worker_threads_and_the_loop_stays_free() -> None:
    worker = ModelWorker("test", concurrency=1, wait_s=5)
    main = threading.get_ident()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    thread = await worker.call(lambda: (time.sleep(0.3), threading.get_ident())[1])
    task.cancel()
    assert thread != main
    assert ticks >= 10


async def test_request_over_capacity_waits_then_gets_busy() -> None:
    worker = ModelWorker("slow-model", concurrency=1, wait_s=0.2)
    first = asyncio.create_task(worker.call(lambda: time.sleep(0.6)))
    await asyncio.sleep(0.05)
    with pytest.raises(ModelBusyError, match="slow-model stayed busy"):
        await worker.call(lambda: None)
    await first
    assert await worker.call(lambda: 42) == 42


async def test_stream_yields_items_as_made_and_stops_the_thread_early() -> None:
    worker = ModelWorker("gen", concurrency=1, wait_s=5)
    made: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(1000):
            made.append(n)
            time.sleep(0.01)
            yield n

    received = []
    async for n in worker.stream(numbers):
        received.append(n)
        if n == 2:
            break
    assert received == [0, 1, 2]
    assert len(made) < 10  # the producer stopped, it did not run to 1000
    assert await worker.call(lambda: "free") == "free"  # and released its slot


async def test_stream_raises_the_producers_error() -> None:
    worker = ModelWorker("broken", concurrency=1, wait_s=5)

    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        _ = [n async for n in worker.stream(failing)]


async def test_stream_each_makes_an_item_only_when_asked_and_holds_no_slot_between() -> None:
    worker = ModelWorker("piper-like", concurrency=1, wait_s=0.5)
    made: list[int] = []
    closed = False

    def sentences() -> Generator[int, None, None]:
        nonlocal closed
        try:
            for n in range(1000):
                made.append(n)
                yield n
        finally:
            closed = True

    received = []
    async with contextlib.aclosing(worker.stream_each(sentences)) as items:
        async for n in items:
            received.append(n)
            # A consumer that pauses: nothing is made ahead, and the model is free.
            await asyncio.sleep(0.05)
            assert made == received
            assert await worker.call(lambda: "between") == "between"
            if n == 2:
                break
    assert received == [0, 1, 2] and made == [0, 1, 2]
    assert closed  # stopping early closed the generator


async def test_stream_each_raises_the_producers_error() -> None:
    worker = ModelWorker("broken-piper", concurrency=1, wait_s=5)

    def failing() -> Generator[int, None, None]:
        yield 1
        raise RuntimeError("voice exploded")

    with pytest.raises(RuntimeError, match="voice exploded"):
        _ = [n async for n in worker.stream_each(failing)]


class Holder:
    """A model call that runs until it is let go, so that others queue behind it."""

    def __init__(self) -> None:
        self.running = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> str:
        self.running.set()
        self.go.wait(10)
        return "held"

    async def started(self) -> None:
        assert await asyncio.to_thread(self.running.wait, 10)


async def settle() -> None:
    """Let every task just created run up to its first wait."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_first_pieces_go_before_later_ones_and_equals_in_arrival_order() -> None:
    worker = ModelWorker("ordered", concurrency=1, wait_s=10)
    holder = Holder()
    holding = asyncio.create_task(worker.call(holder))
    await holder.started()
    served: list[str] = []
    arrivals = [
        ("later-1", Priority.LATER), ("idle", Priority.IDLE), ("first-1", Priority.FIRST),
        ("later-2", Priority.LATER), ("first-2", Priority.FIRST),
    ]  # fmt: skip
    waiting = []
    for name, priority in arrivals:
        waiting.append(asyncio.create_task(worker.call(partial(served.append, name), priority)))
        await settle()
    assert served == []  # all queued behind the holder
    holder.go.set()
    await asyncio.gather(holding, *waiting)
    assert served == ["first-1", "first-2", "later-1", "later-2", "idle"]


async def test_later_work_waits_for_first_work_on_another_model() -> None:
    llm, tts = ModelWorker("llm-like", 1, wait_s=10), ModelWorker("tts-like", 1, wait_s=10)
    holder = Holder()
    first_clause = asyncio.create_task(llm.call(holder, Priority.FIRST))
    await holder.started()
    later_clause = asyncio.create_task(tts.call(lambda: "later", Priority.LATER))
    await settle()
    # The tts model itself is free: first work goes at once, later work waits its turn.
    assert await tts.call(lambda: "first", Priority.FIRST) == "first"
    assert not later_clause.done()
    holder.go.set()
    assert await first_clause == "held"
    assert await later_clause == "later"


async def test_a_stream_keeps_its_place_between_items_at_its_readers_urgency() -> None:
    llm, tts = ModelWorker("llm-like", 1, wait_s=10), ModelWorker("tts-like", 1, wait_s=10)
    urgency = Urgency(Priority.FIRST)

    def tokens() -> Generator[str, None, None]:
        yield from ("Hello", " there", ",", " friend")

    async with contextlib.aclosing(llm.stream_each(tokens, urgency)) as pieces:
        assert await anext(pieces) == "Hello"
        # Between items the stream holds no slot, yet it is still first work.
        later = asyncio.create_task(tts.call(lambda: "later", Priority.LATER))
        await settle()
        assert await llm.call(lambda: "between", Priority.FIRST) == "between"
        assert not later.done()
        urgency.priority = Priority.LATER  # the reader has its first clause
        assert await anext(pieces) == " there"
        assert await later == "later"
        assert [piece async for piece in pieces] == [",", " friend"]


async def test_a_cancelled_call_holds_its_slot_until_its_thread_is_done() -> None:
    worker = ModelWorker("cancelled", concurrency=1, wait_s=10)
    holder = Holder()
    order: list[str] = []

    def held() -> None:
        holder()
        order.append("cancelled call ended")

    cancelled = asyncio.create_task(worker.call(held))
    await holder.started()
    cancelled.cancel()
    nxt = asyncio.create_task(worker.call(lambda: order.append("next call ran")))
    await settle()
    assert order == [] and not nxt.done()
    holder.go.set()
    await nxt
    assert order == ["cancelled call ended", "next call ran"]
    with pytest.raises(asyncio.CancelledError):
        await cancelled


@pytest.mark.parametrize(
    ("priority", "made_first"),
    [(Priority.FIRST, "older stream"), (Priority.LATER, "first to ask")],
)
async def test_first_streams_go_in_the_order_they_began_later_ones_take_turns(
    priority: Priority, made_first: str
) -> None:
    worker = ModelWorker("llm-like", concurrency=1, wait_s=10)
    made: list[str] = []

    def tokens(name: str) -> Callable[[], Generator[str, None, None]]:
        def make() -> Generator[str, None, None]:
            for n in range(2):
                made.append(name)
                yield f"{name} {n}"

        return make

    older = worker.stream_each(tokens("older stream"), priority)
    newer = worker.stream_each(tokens("first to ask"), priority)
    async with contextlib.aclosing(older), contextlib.aclosing(newer):
        await anext(older)
        await anext(newer)
        holder = Holder()
        holding = asyncio.create_task(worker.call(holder, priority))
        await holder.started()
        asks = [asyncio.create_task(anext(newer))]
        await settle()
        asks.append(asyncio.create_task(anext(older)))
        await settle()
        holder.go.set()
        await asyncio.gather(holding, *asks)
    assert made[2] == made_first
