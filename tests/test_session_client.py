"""The session client against a peer over real TCP that sends what a server may send,
in orders that a live model server produces only now and then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, async_read_event, async_write_event

from locara_wyoming.audio_format import PcmFormat, float_to_pcm16
from locara_wyoming.client.scripted import ScriptedSatellite
from locara_wyoming.protocol.session import Flush, SessionStarted

REPLY = PcmFormat(16000, 2, 1)


class Peer:
    """Answers a session, then sends the given events, and records what comes back."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.played: list[dict[str, object]] = []
        self.got_played = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert (await async_read_event(reader)) is not None  # run-pipeline
        started = SessionStarted("s1", "pipeline", "locara", REPLY, REPLY, 20.0)
        for event in [started.event(), *self.events]:
            await async_write_event(event, writer)
        while (event := await async_read_event(reader)) is not None:
            if event.type == "played":
                self.played.append(event.data)
                self.got_played.set()
        writer.close()


@pytest.fixture
async def talking(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Peer, ScriptedSatellite]]:
    """A satellite in session with a `Peer` that sends `request.param`; hung up after."""
    peer = Peer(request.param)
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        room = ScriptedSatellite(f"tcp://127.0.0.1:{port}", "kitchen")
        await room.start()
        try:
            yield peer, room
        finally:
            await room.stop()  # raises the session's error, if it had one


def _reply(reply_id: str, seconds: float) -> list[Event]:
    tone = float_to_pcm16(0.3 * np.sin(np.arange(int(REPLY.rate * seconds)) / 10))
    start = AudioStart(REPLY.rate, REPLY.width, REPLY.channels).event()
    start.data["reply_id"] = reply_id
    return [
        Event("handled-start", {"context": {"reply_id": reply_id}}),
        start,
        AudioChunk(REPLY.rate, REPLY.width, REPLY.channels, tone).event(),
        AudioStop().event(),
        Event("handled", {"context": {"reply_id": reply_id}}),
        Event("handled-stop"),
    ]


INTERRUPTED_BEFORE_ITS_AUDIO = [
    Event("handled-start", {"context": {"reply_id": "r0"}}),
    Flush("r0").event(),  # the user spoke again while the reply was being made
    Event("handled", {"context": {"reply_id": "r0", "interrupted": True}}),
    Event("handled-stop"),
    *_reply("r1", 0.2),
]


@pytest.mark.parametrize("talking", [INTERRUPTED_BEFORE_ITS_AUDIO], indirect=True)
async def test_a_reply_flushed_before_any_of_its_audio_came_plays_nothing(
    talking: tuple[Peer, ScriptedSatellite],
) -> None:
    """It once ended the satellite's session with a KeyError (found by the soak)."""
    peer, room = talking
    async with asyncio.timeout(10):
        while len(peer.played) < 2:
            peer.got_played.clear()
            await peer.got_played.wait()
    assert not room.ended
    assert peer.played == [
        {"reply_id": "r0", "samples": 0},
        {"reply_id": "r1", "samples": int(REPLY.rate * 0.2)},
    ]


@pytest.mark.parametrize("talking", [[]], indirect=True)
async def test_waiting_for_an_answer_that_never_comes_says_what_it_waited_for(
    talking: tuple[Peer, ScriptedSatellite],
) -> None:
    """The soak reports failed turns by these messages; a bare TimeoutError told nothing."""
    _, room = talking
    with pytest.raises(TimeoutError, match=r"^an answer: not within 0.3 s$"):
        await room.answer_after(time.monotonic(), 0.3)
    with pytest.raises(TimeoutError, match=r"^a 'handled' event: not within 0.2 s$"):
        await room.wait_for("handled", time.monotonic(), 0.2)
