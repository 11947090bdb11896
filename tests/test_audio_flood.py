"""A session that sends audio faster than a microphone could, or chunks that declare
minutes of it: what is over the pace is dropped before any work is done on it
(docs/protocol.md, "Uplink"), and every other connection is served as before. A server
of its own, with the default limits (payloads of up to 1 MiB)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np
import pytest
from wyoming.event import Event, async_write_event

from locara_wyoming.audio_format import float_to_pcm16
from locara_wyoming.bench.server_process import ServerProcess

from .support.raw_wyoming import (
    Connection,
    expect_alive,
    expect_error,
    next_event,
    others_served_throughout,
    raw_connection,
)
from .support.speech import Speech

pytestmark = pytest.mark.models

MIC = {"rate": 16000, "width": 2, "channels": 1}
CHUNK_BYTES = 640  # 20 ms of MIC
PING_MOST_S = 0.5
"""Another connection's pings while one floods: the loop answers one at once unless
something holds it."""


@pytest.fixture(scope="module")
async def flood_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(
        tmp_path_factory.mktemp("flood"), "[llm]\nmax_tokens = 30\n"
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def session(server: ServerProcess, name: str) -> AsyncIterator[Connection]:
    async with raw_connection(server) as (reader, writer):
        request = {"locara": {"protocol": 1, "name": name}}
        await async_write_event(Event("run-pipeline", request), writer)
        started = await next_event(reader)
        assert started is not None and started.type == "locara-session", started
        yield reader, writer


async def test_megabyte_chunks_declaring_minutes_of_audio_hold_up_no_one(
    flood_server: ServerProcess,
) -> None:
    """Four 1 MiB chunks declared as 1000 Hz 8-bit audio (17 minutes each, 16 times as
    many samples at 16 kHz) each held the server's loop for 4 to 14 s, and every other
    connection with it. Before them, the costliest chunk the pace still takes: 1.9 s of
    384 kHz audio, 8-bit (soxr's largest job that fits a payload)."""
    heaviest = {"rate": 384_000, "width": 1, "channels": 1}
    flood = {"rate": 1000, "width": 1, "channels": 1}
    silent = b"\x80"  # unsigned 8-bit
    async with (
        session(flood_server, "flood") as (reader, writer),
        others_served_throughout(flood_server, PING_MOST_S, every_s=0.1) as waits,
    ):
        await async_write_event(Event("audio-start", heaviest), writer)
        await async_write_event(Event("audio-chunk", heaviest, silent * 729_600), writer)
        await async_write_event(Event("audio-start", flood), writer)
        for _ in range(4):
            await async_write_event(Event("audio-chunk", flood, silent * 2**20), writer)
            await asyncio.sleep(0.3)
        error = await expect_error(reader, "too-fast")
        assert "1.5 times real time" in error.text, error
        await expect_alive(writer, reader)  # the next event: one error for the four
        await asyncio.sleep(0.5)
    assert len(waits) >= 10, waits
    assert not flood_server.log.stalls(), flood_server.log.stalls()
    assert len(flood_server.log.matching("flood: audio sent faster than")) == 1


async def test_the_asr_program_weighs_a_chunk_before_converting_it(
    flood_server: ServerProcess,
) -> None:
    """An utterance over `limits.max_audio_seconds` (60 s here) is refused; the same
    chunks once took about a quarter of a second each to convert before that."""
    flood = {"rate": 1000, "width": 1, "channels": 1}
    async with (
        raw_connection(flood_server) as (reader, writer),
        others_served_throughout(flood_server, PING_MOST_S, every_s=0.1) as waits,
    ):
        for _ in range(4):
            await async_write_event(Event("audio-start", flood), writer)
            await async_write_event(Event("audio-chunk", flood, b"\x80" * 2**20), writer)
            await expect_error(reader, "too-large")
        await asyncio.sleep(0.3)
    assert len(waits) >= 3, waits
    assert not flood_server.log.stalls(), flood_server.log.stalls()


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), np.float32)


def chunks(audio: np.ndarray) -> list[Event]:
    pcm = float_to_pcm16(audio)
    return [
        Event("audio-chunk", MIC, pcm[start : start + CHUNK_BYTES])
        for start in range(0, len(pcm), CHUNK_BYTES)
    ]


async def test_audio_faster_than_one_and_a_half_times_real_time_is_dropped(
    flood_server: ServerProcess, speech: Speech
) -> None:
    """6.5 s of audio at once, a request said 4 s into it: the 2 s burst is taken, the
    rest dropped and answered with one `too-fast`, and the request is never heard. The
    session goes on, and hears a question said at a microphone's pace."""
    hurried = [silence(4.0), speech.at_16k("Turn on the kitchen light."), silence(0.5)]
    paced = [silence(1.0), speech.at_16k("What is the weather like today?"), silence(2.0)]
    async with session(flood_server, "hurried") as (reader, writer):
        await async_write_event(Event("audio-start", MIC), writer)
        for chunk in chunks(np.concatenate(hurried)):
            await async_write_event(chunk, writer)
        error = await expect_error(reader, "too-fast")
        assert "1.5 times real time (after a 2 s burst)" in error.text, error
        for chunk in chunks(np.concatenate(paced)):
            await async_write_event(chunk, writer)
            await asyncio.sleep(0.02)
        while (event := await next_event(reader)) is not None and event.type != "transcript":
            assert event.type != "error", event
    assert event is not None, "the session ended"
    heard = event.data["text"].lower()  # the first words the server heard
    assert "weather" in heard and "kitchen" not in heard, heard
    assert len(flood_server.log.matching("hurried: audio sent faster than")) == 1
