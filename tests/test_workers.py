"""The model gate: bounded concurrency off the event loop, waits or a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Generator, Iterator

import pytest

from locara_wyoming.workers import ModelBusyError, ModelWorker


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
