"""Clients that go quiet or stop reading: timed out or dropped, holding little, while
everyone else is served. A server of its own with short limits. What a stalled client
costs in memory is measured by `locara-wyoming bench stalled` (docs/benchmarks.md): one
reading of the server's memory to the next differs by more than that cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from wyoming.event import Event, async_write_event
from wyoming.tts import Synthesize

from locara_wyoming.backends.pipeline.clauses import split_for_speech
from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.bench.stalled import stall_session, stall_speech
from locara_wyoming.services.tts import SAMPLES_PER_CHUNK

from .support.raw_wyoming import (
    expect_alive,
    expect_closed,
    expect_error,
    next_event,
    others_served_throughout,
    raw_connection,
)
from .support.slow_voice import CHUNK_S, SPOKEN_S, SlowVoice
from .support.speech import Speech

pytestmark = pytest.mark.models

LIMITS = """
[limits]
idle_connection_s = 1.5
stalled_client_s = 2.0

[llm]
max_tokens = 30
temperature = 0.0
"""


LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog, again and again."] * 150)


@pytest.fixture(scope="module")
async def strict_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("strict"), LIMITS) as process:
        yield process


async def test_a_silent_connection_is_timed_out(strict_server: ServerProcess) -> None:
    async with raw_connection(strict_server) as (reader, _writer):
        started = time.monotonic()
        error = await expect_error(reader, "timeout")
        assert "idle time" in error.text
        await expect_closed(reader)
        assert 1.4 < time.monotonic() - started < 5


async def test_a_header_sent_a_byte_at_a_time_is_timed_out(strict_server: ServerProcess) -> None:
    """Bytes that make no whole event do not count as activity."""
    async with raw_connection(strict_server) as (reader, writer):
        started = time.monotonic()
        for byte in b'{"type":':  # 8 bytes over 1.6 s, then nothing more
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)
        await expect_error(reader, "timeout")
        # Had each byte restarted the clock, the timeout would come 1.5 s after the last.
        assert time.monotonic() - started < 1.6 + 1.5


@pytest.fixture(scope="module")
async def slow_voice_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ServerProcess]:
    """The same idle limit, with asr and tts from a voice that takes a known time anywhere."""
    voice = SlowVoice()
    await voice.start()
    config = f"""
[limits]
idle_connection_s = 1.5

[stt]
uri = "{voice.uri}"

[tts]
uri = "{voice.uri}"

[llm]
concurrency = 1
"""
    try:
        async with ServerProcess(tmp_path_factory.mktemp("slow"), config) as process:
            yield process
    finally:
        await voice.stop()


async def test_a_client_waiting_for_a_long_answer_is_not_idle(
    slow_voice_server: ServerProcess,
) -> None:
    """Three sentences, each of them SPOKEN_S to synthesize, take longer than the idle limit
    on any machine; the client gets it all."""
    text = LONG_TEXT[:186]
    pieces = len(split_for_speech(text))
    assert pieces * SPOKEN_S > 1.5 + 1.0  # the idle limit, and a second more
    async with raw_connection(slow_voice_server) as (reader, writer):
        await async_write_event(Synthesize(text=text).event(), writer)
        started, chunks = time.monotonic(), 0
        while (event := await next_event(reader)) is not None and event.type != "audio-stop":
            chunks += event.type == "audio-chunk"
        assert event is not None and chunks >= pieces * SPOKEN_S / CHUNK_S
        assert time.monotonic() - started >= pieces * SPOKEN_S - CHUNK_S
        await expect_alive(writer, reader)


# What the server may hold for a client that stopped reading: asyncio's transport takes
# writes while its buffer is under its high-water mark (64 KiB), and then the next write
# waits, which drops the client after `stalled_client_s`; so the buffer holds less than
# that mark and one more event: the speech service's chunk of 16-bit samples and its
# header.
HIGH_WATER = 64 * 1024
SPEECH_EVENT_MOST = SAMPLES_PER_CHUNK * 2 + 1024


async def test_a_client_that_stops_reading_is_dropped_holding_little(
    strict_server: ServerProcess,
) -> None:
    """It asks for four minutes of speech (10 MB of audio) and reads none of it; another
    room's speech is made meanwhile (Piper is not kept for the stalled client)."""
    async with others_served_throughout(strict_server):
        stalled = asyncio.create_task(stall_speech(strict_server, LONG_TEXT[:4000]))
        await asyncio.sleep(1.0)  # its first sentences made and sent; its writes wait
        async with raw_connection(strict_server) as (reader, writer):
            await async_write_event(Synthesize(text="The other room is answered.").event(), writer)
            while (event := await next_event(reader)) is not None and event.type != "audio-stop":
                pass
            assert event is not None
        assert not stalled.done()  # answered while the stalled client still held on
        unsent = await stalled
    assert any("(not reading); dropping it" in line for line in strict_server.log)
    assert unsent.reply_audio == 0  # no session
    assert 0 < unsent.write_buffer <= HIGH_WATER + SPEECH_EVENT_MOST, unsent
    async with raw_connection(strict_server) as (reader, writer):
        await async_write_event(Event("describe"), writer)
        assert (await next_event(reader)) is not None


async def test_a_session_that_stops_reading_but_keeps_talking_is_dropped(
    strict_server: ServerProcess, speech: Speech
) -> None:
    """It keeps its keep-alive by sending its microphone, but never reads the reply: the
    `played` report it promised does not come, and it is dropped."""
    question = speech.at_16k("What is the sea like in winter?")
    began = time.monotonic()
    async with others_served_throughout(strict_server):
        unsent = await stall_session(strict_server, question)
    assert strict_server.log.matching("never reported played"), strict_server.log[-30:]
    assert time.monotonic() - began < 25  # a reply of a few seconds, then the grace of 2 s
    # The reply (a few seconds, 30 tokens at most) fitted in the sockets' buffers: the
    # server held none of it. The session's own queue pauses generation at
    # `max_buffered_audio_s`; `bench stalled` measures what a stalled room costs.
    assert unsent.write_buffer <= HIGH_WATER and unsent.reply_audio == 0, unsent
