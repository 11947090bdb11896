"""What a room was told before it is asked to answer: after `start_conversation` the
announcement is in the room's conversation, as the persona's own words, and Home
Assistant's `extra_system_prompt` in the persona's prompt; a question and a plain
announcement stay out of it. Seen in the very requests the server sends a real LLM
endpoint (through the prompt tap)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.scripted import ScriptedSatellite

from .support.control_client import ControlClient, control, token_of
from .support.prompt_tap import PromptTap
from .support.rooms import satellite
from .support.speech import Speech

pytestmark = pytest.mark.models

EXTRA = "The house is at 15 degrees and the heating is off."


async def not_handled(request: dict[str, Any]) -> tuple[bool, str | None]:
    """Home Assistant's agent understood nothing: the LLM answers."""
    return False, None


async def answered(room: ScriptedSatellite, speech: Speech, words: str) -> str:
    """Say `words`, wait for the reply to play out; the words as the server heard them."""
    said = await room.say(speech.at_16k(words))
    _, reply = await room.reply_after(said.voiced_end)
    await asyncio.wait_for(reply.done.wait(), 60)
    return str((await room.wait_for("transcript", said.voiced_end)).event.data["text"])


@pytest.fixture
async def hub(delegating_server: ServerProcess) -> AsyncIterator[ControlClient]:
    server = delegating_server
    async with control(server.host, server.port, token_of(server)) as client:
        client.answer_home = not_handled
        yield client


async def test_after_start_conversation_the_persona_knows_what_it_asked(
    delegating_server: ServerProcess, hub: ControlClient, prompt_tap: PromptTap, speech: Speech
) -> None:
    async with satellite(delegating_server, "landing", area="Landing", enrolled=True) as room:
        asked = time.monotonic()
        done = await hub.request(
            "locara-announce", text="Shall I turn on the heating?", satellite="landing",
            listen=True, extra_system_prompt=EXTRA,
        )  # fmt: skip
        assert done.type == "locara-announce-done", done.data
        await room.wait_for("locara-listen", asked)
        heard = await answered(room, speech, "Yes please, turn it on.")
    sent = prompt_tap.chats()[-1]
    assert sent[0]["role"] == "system" and sent[0]["content"].endswith(f"\n\n{EXTRA}"), sent[0]
    assert sent[1:] == [
        {"role": "assistant", "content": "Shall I turn on the heating?"},
        {"role": "user", "content": heard},
    ]


async def test_a_question_and_a_plain_announcement_stay_out_of_the_conversation(
    delegating_server: ServerProcess, hub: ControlClient, prompt_tap: PromptTap, speech: Speech
) -> None:
    async with satellite(delegating_server, "porch", area="Porch", enrolled=True) as room:
        plain = await hub.request("locara-announce", text="Dinner is ready.", satellite="porch")
        assert plain.type == "locara-announce-done", plain.data
        asked = time.monotonic()
        question = asyncio.create_task(
            hub.request(
                "locara-announce", text="Which colour shall the lights be?", satellite="porch",
                answer=True, answer_timeout_s=30,
            )
        )  # fmt: skip
        await room.wait_for("locara-listen", asked)
        await room.say(speech.at_16k("Make them blue please."))
        done = await asyncio.wait_for(question, 60)
        assert "blue" in done.data["answer"].lower(), done.data
        heard = await answered(room, speech, "What is the capital of France?")
    sent = prompt_tap.chats()[-1]
    assert EXTRA not in sent[0]["content"]
    assert sent[1:] == [{"role": "user", "content": heard}]
