"""Clients that go quiet or stop reading: timed out or dropped, at a bounded cost, while
everyone else is served. A server of its own with short limits."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import numpy as np
import psutil
import pytest
from wyoming.event import Event, async_write_event
from wyoming.tts import Synthesize

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.scripted import ScriptedSatellite

from .conftest import Speech
from .test_bad_input import expect_alive, expect_closed, expect_error, next_event, raw_connection

LIMITS = """
[limits]
idle_connection_s = 1.5
stalled_client_s = 2.0

[llm]
max_tokens = 30
temperature = 0.0
"""
# temperature 0: the same question gets the same reply, so the stalled session's cost is
# measured against a listening room that did the very same work.


async def peak_mb_while(server: psutil.Process, work: Awaitable[object]) -> float:
    """The server's highest resident memory while `work` runs, sampled every 50 ms. The
    models' working buffers come and go with each request (the memory releaser hands
    them back between requests), so a stalled client's cost is measured against the
    peak of the same work for a client that reads."""
    peak = 0.0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, server.memory_info().rss / 2**20)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        await work
    finally:
        sampler.cancel()
    return max(peak, server.memory_info().rss / 2**20)


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


async def test_a_client_waiting_for_a_long_answer_is_not_idle(
    strict_server: ServerProcess,
) -> None:
    """Synthesis of 15 sentences takes longer than the idle limit; the client gets it all."""
    async with raw_connection(strict_server) as (reader, writer):
        await async_write_event(Synthesize(text=LONG_TEXT[:1000]).event(), writer)
        started, chunks = time.monotonic(), 0
        while (event := await next_event(reader)) is not None and event.type != "audio-stop":
            chunks += event.type == "audio-chunk"
        assert event is not None and chunks > 10
        assert time.monotonic() - started > 1.5  # longer than the idle limit
        await expect_alive(writer, reader)


async def test_a_client_that_stops_reading_is_dropped_at_a_bounded_cost(
    strict_server: ServerProcess, tmp_path: Path
) -> None:
    server = psutil.Process(strict_server.pid)
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.setblocking(False)
    await asyncio.get_running_loop().sock_connect(stalled, (strict_server.host, strict_server.port))
    reader, writer = await asyncio.open_connection(sock=stalled)
    request = Synthesize(text=LONG_TEXT[:4000]).event()

    async def keep_alive() -> None:  # the idle limit is short here
        while True:
            await async_write_event(Event("ping"), writer)
            await asyncio.sleep(0.5)

    pinging = asyncio.create_task(keep_alive())
    try:

        async def read_it_all() -> None:
            async with raw_connection(strict_server) as (good_reader, good_writer):
                await async_write_event(request, good_writer)
                while (event := await next_event(good_reader)) is not None:
                    if event.type == "audio-stop":
                        break

        before = await peak_mb_while(server, read_it_all()) * 2**20  # the baseline
        pinging.cancel()
        await async_write_event(request, writer)  # the same minutes of audio, never read
        peak = before
        async with raw_connection(strict_server) as (other_reader, other_writer):
            for _ in range(40):  # others are served all along
                await expect_alive(other_writer, other_reader)
                peak = max(peak, server.memory_info().rss)
                if any("not reading" in line for line in strict_server.log):
                    break
                await asyncio.sleep(0.5)
        assert any("(not reading); dropping it" in line for line in strict_server.log)
        assert (peak - before) / 2**20 <= 10, f"grew {(peak - before) / 2**20:.1f} MB"
        with contextlib.suppress(ConnectionError):  # reset, or closed: either way gone
            async with asyncio.timeout(10):
                while await reader.read(65536):
                    pass  # what the kernel held from before the drop
    finally:
        pinging.cancel()
        writer.close()
    async with raw_connection(strict_server) as (reader, writer):
        await async_write_event(Event("describe"), writer)
        assert (await next_event(reader)) is not None


async def test_a_session_that_stops_reading_but_keeps_talking_is_dropped(
    strict_server: ServerProcess, speech: Speech
) -> None:
    """It keeps its keep-alive by sending its microphone, but never reads the reply: the
    `played` report it promised does not come, and it is dropped at a bounded cost."""
    server = psutil.Process(strict_server.pid)
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.setblocking(False)
    await asyncio.get_running_loop().sock_connect(stalled, (strict_server.host, strict_server.port))
    reader, writer = await asyncio.open_connection(sock=stalled)
    request = {"protocol": 1, "name": "deaf-room", "capabilities": ["played"]}
    await async_write_event(Event("run-pipeline", {"locara": request}), writer)
    started = await next_event(reader)
    assert started is not None and started.type == "locara-session"
    mic = {"rate": 16000, "width": 2, "channels": 1}
    await async_write_event(Event("audio-start", mic), writer)
    question = speech.at_16k("What is the sea like in winter?")
    audio = np.concatenate([np.zeros(8000, np.float32), question, np.zeros(480_000, np.float32)])
    pcm = (audio * 32767).astype("<i2").tobytes()

    async def hear_it_out() -> None:  # the same question from a room that listens
        room = ScriptedSatellite(strict_server.uri, "hearing-room")
        await room.start()
        said = await room.say(question)
        _, reply = await room.answer_after(said.voiced_end, 60)
        if reply is not None:
            await asyncio.wait_for(reply.done.wait(), 60)
        await room.stop()

    before = await peak_mb_while(server, hear_it_out()) * 2**20
    peak = before
    sent_from = time.monotonic()
    async with raw_connection(strict_server) as (other_reader, other_writer):
        for start in range(0, len(pcm), 640):  # in real time, reading nothing
            try:
                await async_write_event(Event("audio-chunk", mic, pcm[start : start + 640]), writer)
            except ConnectionError:
                break  # dropped
            await asyncio.sleep(max(0.0, sent_from + start / 32000 - time.monotonic()))
            if start % 32000 == 0:
                await expect_alive(other_writer, other_reader)  # others are served all along
                peak = max(peak, server.memory_info().rss)
            if any("never reported played" in line for line in strict_server.log):
                break
    dropped_at = time.monotonic()
    writer.close()
    try:  # a refused write can beat the server's warning through its stderr pipe
        await strict_server.log.wait_for("never reported played", timeout_s=5)
    except TimeoutError:
        pytest.fail(
            "not dropped for a missing `played` report:\n" + "\n".join(strict_server.log[-30:])
        )
    assert dropped_at - sent_from < 25  # a reply of a few seconds, then the grace of 2 s
    assert (peak - before) / 2**20 <= 10, f"grew {(peak - before) / 2**20:.1f} MB"
