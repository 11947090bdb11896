"""LLM contexts per conversation: rooms stream at once, each keeps its context, the pool
holds no more than its size, and a request that waits too long gets a busy error.

The pool's choices are checked on plain objects (it hands out whatever contexts it
was given); streaming at once on the real embedded model."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from locara_wyoming.config import parse_config
from locara_wyoming.stages.llama_contexts import LlamaContexts
from locara_wyoming.stages.llm import ChatMessage, LlamaCppChat, compute_slots
from locara_wyoming.workers import ModelBusyError


async def test_a_conversation_keeps_its_context_and_a_new_one_takes_a_free_one() -> None:
    first, second, third = object(), object(), object()
    pool = LlamaContexts([first, second, third], wait_s=5)
    async with pool.lease("kitchen") as kitchen, pool.lease("hall") as hall:
        assert kitchen is first and hall is second
    async with pool.lease("hall") as hall_again:
        assert hall_again is second
    async with pool.lease("kitchen") as kitchen_again:
        assert kitchen_again is first
    # A new conversation takes the unused context before anyone's.
    async with pool.lease("bedroom") as bedroom:
        assert bedroom is third
    # With none unused, the least recently used one: the hall's.
    async with pool.lease("garage") as garage:
        assert garage is second
    async with pool.lease("hall") as hall_after:
        assert hall_after is not second  # its context went to the garage


async def test_the_pool_never_lends_more_than_its_size() -> None:
    pool = LlamaContexts([object(), object()], wait_s=5)
    held: list[object] = []
    release = asyncio.Event()

    async def room(name: str) -> None:
        async with pool.lease(name) as context:
            held.append(context)
            await release.wait()
            held.remove(context)

    rooms = [asyncio.create_task(room(f"room-{n}")) for n in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(held) == 2 and len(set(map(id, held))) == 2  # the third waits
    release.set()
    await asyncio.gather(*rooms)
    assert held == []


async def test_a_conversation_waits_for_its_own_busy_context_then_gets_busy() -> None:
    pool = LlamaContexts([object(), object()], wait_s=0.2)
    async with pool.lease("kitchen"):
        with pytest.raises(ModelBusyError, match="contexts stayed busy"):
            async with pool.lease("kitchen"):
                pass  # the other context is free, but reading its history there costs more
        async with pool.lease("hall"):
            pass


async def test_a_prefill_takes_only_its_own_free_context() -> None:
    first, second = object(), object()
    pool = LlamaContexts([first, second], wait_s=5)
    with pool.own_if_free("kitchen") as none_yet:
        assert none_yet is None  # no context has read the kitchen's prompt
    async with pool.lease("kitchen"):
        with pool.own_if_free("kitchen") as busy:
            assert busy is None
    with pool.own_if_free("kitchen") as own:
        assert own is first


def test_contexts_decode_one_at_a_time_unless_the_cores_hold_more() -> None:
    assert compute_slots(contexts=4, threads=2, cores=2) == 1
    assert compute_slots(contexts=4, threads=2, cores=4) == 2
    assert compute_slots(contexts=4, threads=1, cores=16) == 4
    assert compute_slots(contexts=1, threads=8, cores=4) == 1


def question(text: str) -> list[ChatMessage]:
    return [{"role": "system", "content": "You are brief."}, {"role": "user", "content": text}]


async def load(concurrency: int, wait_s: float) -> LlamaCppChat:
    config = parse_config(
        {
            "llm": {"temperature": 0.0, "max_tokens": 24, "concurrency": concurrency},
            "limits": {"model_wait_s": wait_s},
        }
    )
    llm = LlamaCppChat(config.llm, config.limits)
    await llm.load()
    return llm


@pytest.mark.models
async def test_two_conversations_stream_at_once_on_two_contexts() -> None:
    llm = await load(concurrency=2, wait_s=5)
    kitchen = llm.stream_reply(question("Name a fruit."), "kitchen")
    hall = llm.stream_reply(question("Name a colour."), "hall")
    async with contextlib.aclosing(kitchen), contextlib.aclosing(hall):
        # Turn about, while both replies are open: neither waits for the other's end.
        pieces = {"kitchen": [await anext(kitchen)], "hall": [await anext(hall)]}
        pieces["kitchen"].append(await anext(kitchen))
        pieces["hall"].append(await anext(hall))
        pieces["kitchen"] += [piece async for piece in kitchen]
        pieces["hall"] += [piece async for piece in hall]
    # Each reply is the one its prompt gets alone on a fresh context (temperature 0):
    # the two contexts kept apart what each had read.
    fresh = await load(concurrency=2, wait_s=5)
    for room, text in (("kitchen", "Name a fruit."), ("hall", "Name a colour.")):
        alone = [piece async for piece in fresh.stream_reply(question(text), room)]
        assert "".join(pieces[room]) == "".join(alone)


@pytest.mark.models
async def test_one_context_serves_one_reply_and_others_get_busy() -> None:
    llm = await load(concurrency=1, wait_s=0.5)
    kitchen = llm.stream_reply(question("Name a fruit."), "kitchen")
    async with contextlib.aclosing(kitchen):
        await anext(kitchen)
        with pytest.raises(ModelBusyError, match="llm: all 1 contexts stayed busy"):
            _ = [piece async for piece in llm.stream_reply(question("Hello?"), "hall")]
    assert [piece async for piece in llm.stream_reply(question("Hello?"), "hall")]
