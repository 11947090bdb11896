"""Voice sessions end to end: a scripted satellite over TCP against the real server."""

from __future__ import annotations

import asyncio
import re
import time

import numpy as np
import pytest
import soxr
from faster_whisper import WhisperModel
from wyoming.event import Event
from wyoming.wake import Detection

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.playback import ReplyPlayback
from locara_wyoming.client.scripted import ScriptedSatellite
from locara_wyoming.protocol.session import SatelliteState

from .support.control_client import control, token_of
from .support.prompt_tap import PromptTap
from .support.rooms import satellite
from .support.speech import Speech, wer

pytestmark = pytest.mark.models


def words_of(reply: ReplyPlayback, whisper: WhisperModel) -> list[str]:
    audio = soxr.resample(np.concatenate(reply.received_audio), reply.audio.rate, 16000)
    segments, _ = whisper.transcribe(audio.astype(np.float32), language="en", beam_size=1)
    return re.findall(r"[a-z']+", " ".join(s.text for s in segments).lower())


async def test_a_spoken_question_gets_a_spoken_english_reply(
    server: ServerProcess, speech: Speech, whisper: WhisperModel
) -> None:
    async with satellite(server, "kitchen", area="Kitchen") as room:
        assert room.client.started is not None
        assert room.client.started.backend == "voice-pipeline-default"
        assert room.client.started.persona == "locara"
        question = "What is the weather like today?"
        said = await room.say(speech.at_16k(question))
        reply_id, reply = await room.reply_after(said.voiced_end)
        await asyncio.wait_for(reply.done.wait(), 60)
        transcript = (await room.wait_for("transcript", 0)).event.data["text"]
        handled = await room.wait_for("handled", 0)
    assert wer(question, transcript) <= 0.2, transcript
    assert room.seen_of("voice-started") and room.seen_of("voice-stopped")
    assert handled.event.data["context"]["reply_id"] == reply_id
    heard = words_of(reply, whisper)
    assert len(heard) >= 3, heard
    reply_words = set(re.findall(r"[a-z']+", handled.event.data["text"].lower()))
    assert len(reply_words & set(heard)) >= len(heard) // 2, (heard, reply_words)
    assert reply.flushed_at is None and reply.played == reply.received  # all of it, heard


async def test_two_turns_keep_their_history(
    delegating_server: ServerProcess, prompt_tap: PromptTap, speech: Speech
) -> None:
    """The LLM sits behind a relay that keeps its prompts: the second turn's carries the first."""
    async with satellite(delegating_server, "office") as room:
        said = await room.say(speech.at_16k("My name is Zorblax."))
        _, first = await room.reply_after(said.voiced_end)
        await asyncio.wait_for(first.done.wait(), 60)
        first_turn = [
            (await room.wait_for(kind, 0)).event.data["text"] for kind in ("transcript", "handled")
        ]
        said = await room.say(speech.at_16k("What is my name?"))
        _, second = await room.reply_after(said.voiced_end)
        await asyncio.wait_for(second.done.wait(), 60)
        question = (await room.wait_for("transcript", said.voiced_end)).event.data["text"]
    sent = prompt_tap.chats()[-1]
    assert "name" in question.lower() and first_turn[1]
    assert [m["content"] for m in sent[1:]] == [*first_turn, question]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]


async def test_a_resumed_session_keeps_its_history(
    delegating_server: ServerProcess, prompt_tap: PromptTap, speech: Speech
) -> None:
    """A satellite whose connection dropped comes back with `resume` and carries on."""
    async with satellite(delegating_server, "den") as room:
        assert room.client.started is not None
        session_id = room.client.started.session_id
        said = await room.say(speech.at_16k("My name is Zorblax."))
        _, first = await room.reply_after(said.voiced_end)
        await asyncio.wait_for(first.done.wait(), 60)
        first_turn = [
            (await room.wait_for(kind, 0)).event.data["text"] for kind in ("transcript", "handled")
        ]
    async with satellite(delegating_server, "den", resume=session_id) as room:
        assert room.client.started is not None and room.client.started.session_id == session_id
        said = await room.say(speech.at_16k("What is my name?"))
        _, second = await room.reply_after(said.voiced_end)
        await asyncio.wait_for(second.done.wait(), 60)
        question = (await room.wait_for("transcript", said.voiced_end)).event.data["text"]
    sent = prompt_tap.chats()[-1]
    assert [m["content"] for m in sent[1:]] == [*first_turn, question]


async def test_a_turn_whose_llm_fails_gets_an_error_and_the_session_goes_on(
    delegating_server: ServerProcess, prompt_tap: PromptTap, speech: Speech
) -> None:
    async with satellite(delegating_server, "cellar") as room:
        with prompt_tap.outage():
            said = await room.say(speech.at_16k("What is the capital of France?"))
            failed = await room.wait_for("error", said.voiced_end)
        assert failed.event.data["code"] == "reply-failed"
        assert f"the LLM at {prompt_tap.url} failed" in failed.event.data["text"]
        # The failed reply was closed before the error: the satellite is not left waiting.
        stops = room.seen_of("handled-stop")
        assert len(stops) == 1 and stops[0].at <= failed.at
        assert not room.client.busy()
        said = await room.say(speech.at_16k("Please turn on the lights in the kitchen."))
        _, reply = await room.reply_after(said.voiced_end)
        await asyncio.wait_for(reply.done.wait(), 60)
        question = (await room.wait_for("transcript", said.voiced_end)).event.data["text"]
    assert prompt_tap.chats()[-1][1:] == [{"role": "user", "content": question}]


async def test_status_lists_each_session_with_what_its_satellite_says(
    server: ServerProcess,
) -> None:
    async def sessions() -> list[dict[str, object]]:
        """Every session, as Home Assistant's proven connection is told (a stranger is
        told none: tests/test_trust.py)."""
        token = token_of(server)
        async with control(server.host, server.port, token) as hub:
            return list((await hub.status())["sessions"])

    async with satellite(server, "porch", area="Porch") as room:
        assert room.client.started is not None
        session_id = room.client.started.session_id
        mine = [s for s in await sessions() if s["session_id"] == session_id]
        assert mine and mine[0]["name"] == "porch" and mine[0]["area"] == "Porch"
        assert mine[0]["state"] == "listening" and mine[0]["backend"] == "voice-pipeline-default"
        assert await room.client.send(SatelliteState("idle").event())
        assert await room.client.send(Detection(name="okay_nabu").event())
        await asyncio.sleep(0.5)
        mine = [s for s in await sessions() if s["session_id"] == session_id]
        assert mine[0]["state"] == "idle" and mine[0]["wake_word"] == "okay_nabu"
        assert await room.client.send(Event(type="locara-state", data={"state": "dancing"}))
        error = await room.wait_for("error", 0, timeout_s=10)
        assert "state must be one of" in error.event.data["text"]
    assert not [s for s in await sessions() if s["session_id"] == session_id]


async def test_speaking_over_a_reply_flushes_it(server: ServerProcess, speech: Speech) -> None:
    async with satellite(server, "story-room") as room:
        assert room.client.started is not None and room.client.started.persona == "storyteller"
        said = await room.say(speech.at_16k("Tell me a long story about a dragon."))
        reply_id, reply = await room.reply_after(said.voiced_end)
        await asyncio.sleep(1.5)
        assert reply.audible_at is not None and not reply.done.is_set()
        interruption = await room.say(speech.at_16k("Stop, stop. That is enough, thank you."))
        flush = await room.wait_for("locara-flush", 0, timeout_s=10)
        assert flush.event.data["reply_id"] == reply_id
        assert reply.flushed_at is not None
        assert reply.played < reply.received
        handled = [
            s for s in room.seen_of("handled") if s.event.data["context"]["reply_id"] == reply_id
        ]
        assert handled[0].event.data["context"]["interrupted"] is True
        # The interruption is a turn of its own and gets its own answer.
        next_id, _ = await room.reply_after(interruption.voiced_end)
        assert next_id != reply_id


async def test_two_rooms_at_once_never_mix(server: ServerProcess, speech: Speech) -> None:
    async with satellite(server, "north") as north, satellite(server, "south") as south:
        said = await asyncio.gather(
            north.say(speech.at_16k("Please turn on the lights in the kitchen.")),
            south.say(speech.at_16k("Set a timer for ten minutes.")),
        )
        replies = await asyncio.gather(
            north.reply_after(said[0].voiced_end), south.reply_after(said[1].voiced_end)
        )
        await asyncio.gather(*(asyncio.wait_for(r.done.wait(), 60) for _, r in replies))
        assert north.client.started is not None and south.client.started is not None
        assert north.client.started.session_id != south.client.started.session_id
    north_heard = " ".join(s.event.data["text"] for s in north.seen_of("transcript")).lower()
    south_heard = " ".join(s.event.data["text"] for s in south.seen_of("transcript")).lower()
    assert "kitchen" in north_heard and "timer" not in north_heard
    assert "timer" in south_heard and "kitchen" not in south_heard
    assert replies[0][0] != replies[1][0]


async def test_a_session_goes_on_while_another_connection_sends_garbage(
    server: ServerProcess, speech: Speech
) -> None:
    async def hostile(until: float) -> int:
        sent = 0
        while time.monotonic() < until:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b'{"type": "audio-chunk", "payload_length": 99999999}\n' + b"\xff" * 512)
            await writer.drain()
            await reader.read()
            writer.close()
            sent += 1
        return sent

    async with satellite(server, "garage") as room:
        garbage = asyncio.create_task(hostile(time.monotonic() + 8))
        said = await room.say(speech.at_16k("Open the garage door."))
        _, reply = await room.reply_after(said.voiced_end)
        await asyncio.wait_for(reply.done.wait(), 60)
        assert await garbage > 5
    assert "garage" in room.seen_of("transcript")[0].event.data["text"].lower()


@pytest.mark.parametrize("name", ["", "   "])
async def test_a_session_needs_a_name(server: ServerProcess, name: str) -> None:
    room = ScriptedSatellite(server.uri, name)
    with pytest.raises(Exception, match="needs the satellite's name"):
        await room.start()
    await room.speaker.close()
