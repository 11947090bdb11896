"""`locara-wyoming bench stalled`: what a client that stops reading costs the server.

Two kinds of stalled client, in rounds: one asks for minutes of speech (`synthesize`)
and reads none of it; a voice session asks a question and reads none of the reply, nor
reports it played. The server drops each (`limits.stalled_client_s`) and logs what it
held for it. The server's resident memory is read with no client connected before each,
every `SAMPLE_S` while it is connected, and again after the drop. Its cost is the level
over the last seconds before the drop (`HELD_WINDOW_S`: the model work for it ended long
before, and all the server holds for it is still held) less the level before.

One idle reading to the next differs by up to about 20 MB after the same model work
(2026-12-02, docs/benchmarks.md: the allocators keep what the work left them in pieces),
so one round's figure is mostly that; the median over the rounds is the figure.
"""

from __future__ import annotations

import asyncio
import re
import socket
import statistics
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.tts import Synthesize

from ..audio_format import PcmFormat, float_to_pcm16
from . import utterances
from .harness import measure_server, read_config
from .report import progress, publish, rss_mb
from .server_process import ServerProcess

QUESTION = "What is the sea like in winter?"
SPEECH_TEXT = " ".join(["The quick brown fox jumps over the lazy dog, again and again."] * 60)
"""About four minutes of speech: far more than any buffer holds."""
DROPPED_MARK = "(not reading); dropping it"
UNSENT = re.compile(r"unsent: (\d+) bytes in the write buffer, (\d+) of reply audio queued")
MIC = PcmFormat(utterances.MIC_RATE, 2, 1)
CHUNK_BYTES = MIC.bytes_per_second // 50
"""20 ms of the microphone."""
RECEIVE_BUFFER = 4096
"""The stalled client's socket takes little before the server's writes block."""
DROP_TIMEOUT_S = 120.0
SAMPLE_S = 0.2
HELD_WINDOW_S = (3.0, 0.5)
"""The readings from 3 s to 0.5 s before the drop make the level held: with the default
`stalled_client_s` of 10 s, no model works for the client then."""
QUIET_S = 3.0
"""Long enough after model work for the memory releaser to have handed back its buffers."""


@dataclass(frozen=True)
class Unsent:
    """What the server held for a client when it dropped it, as its warning says."""

    write_buffer: int
    reply_audio: int

    @classmethod
    def from_warning(cls, line: str) -> Unsent:
        found = UNSENT.search(line)
        if found is None:
            raise ValueError(f"no unsent figures in {line!r}")
        return cls(int(found[1]), int(found[2]))


async def _stalled_connection(
    server: ServerProcess,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
    return await asyncio.open_connection(sock=sock)


async def _dropped(server: ServerProcess, seen: int) -> Unsent:
    """The next drop's figures (the `seen`-th and earlier were before)."""
    line = await server.log.wait_for(DROPPED_MARK, seen + 1, DROP_TIMEOUT_S)
    return Unsent.from_warning(line)


async def _read_to_the_end(reader: asyncio.StreamReader) -> None:
    """What the sockets still held, until the server's close (or reset) shows: the
    warning alone does not prove the connection went."""
    try:
        async with asyncio.timeout(DROP_TIMEOUT_S):
            while await reader.read(65536):
                pass
    except ConnectionError:
        pass  # reset: gone
    except TimeoutError:
        raise RuntimeError("the server said it dropped the client, but did not") from None


async def stall_speech(server: ServerProcess, text: str = SPEECH_TEXT) -> Unsent:
    """Ask for `text` spoken and read none of it; returns once the server dropped us."""
    seen = len(server.log.matching(DROPPED_MARK))
    reader, writer = await _stalled_connection(server)
    try:
        await async_write_event(Synthesize(text=text).event(), writer)
        unsent = await _dropped(server, seen)
        await _read_to_the_end(reader)
        return unsent
    finally:
        writer.close()


async def stall_session(server: ServerProcess, question: np.ndarray) -> Unsent:
    """Open a voice session that promises `played` reports, ask `question` (16 kHz) and
    go on sending the microphone in real time, reading nothing; returns once the server
    dropped us."""
    seen = len(server.log.matching(DROPPED_MARK))
    reader, writer = await _stalled_connection(server)
    request = {"protocol": 1, "name": "stalled-room", "capabilities": ["played"]}
    try:
        await async_write_event(Event("run-pipeline", {"locara": request}), writer)
        started = await asyncio.wait_for(async_read_event(reader), DROP_TIMEOUT_S)
        if started is None or started.type != "locara-session":
            raise RuntimeError(f"no session: {started}")
        mic = {"rate": MIC.rate, "width": MIC.width, "channels": MIC.channels}
        await async_write_event(Event("audio-start", mic), writer)
        dropped = asyncio.create_task(_dropped(server, seen))
        audio = np.concatenate([np.zeros(8000, np.float32), question])
        pcm = float_to_pcm16(audio)
        silence = bytes(CHUNK_BYTES)
        sent_from, sent = time.monotonic(), 0
        while not dropped.done():
            chunk = pcm[sent : sent + CHUNK_BYTES] or silence
            try:
                await async_write_event(Event("audio-chunk", mic, chunk), writer)
            except ConnectionError:
                break  # dropped; its warning is on its way through the server's pipe
            sent += CHUNK_BYTES
            due = sent_from + sent / MIC.bytes_per_second
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        unsent = await dropped
        await _read_to_the_end(reader)
        return unsent
    finally:
        writer.close()


@dataclass(frozen=True)
class Cost:
    unsent: Unsent
    held_mb: float
    """The level over `HELD_WINDOW_S` before the drop, less the level before."""
    after_mb: float
    """The level after the drop, less the level before."""


async def _cost(server: ServerProcess, stall: Awaitable[Unsent]) -> Cost:
    await asyncio.sleep(QUIET_S)
    before = rss_mb(server.pid)
    readings: list[tuple[float, float]] = []

    async def sample() -> None:
        while True:
            readings.append((time.monotonic(), rss_mb(server.pid)))
            await asyncio.sleep(SAMPLE_S)

    sampler = asyncio.create_task(sample())
    try:
        unsent = await stall
    finally:
        sampler.cancel()
    dropped_at = time.monotonic()
    earliest, latest = (dropped_at - seconds for seconds in HELD_WINDOW_S)
    held = [mb for at, mb in readings if earliest <= at <= latest] or [readings[-1][1]]
    await asyncio.sleep(QUIET_S)
    return Cost(
        unsent,
        round(statistics.median(held) - before, 1),
        round(rss_mb(server.pid) - before, 1),
    )


def _summary(costs: list[Cost]) -> dict[str, Any]:
    held = [cost.held_mb for cost in costs]
    return {
        "rss_mb_held": held,
        "rss_mb_held_median": round(statistics.median(held), 1),
        "rss_mb_after_drop": [cost.after_mb for cost in costs],
        "unsent_bytes_most": max(c.unsent.write_buffer + c.unsent.reply_audio for c in costs),
    }


async def _stalled(server: ServerProcess, rounds: int, question: np.ndarray) -> dict[str, Any]:
    speech: list[Cost] = []
    session: list[Cost] = []
    for number in range(1, rounds + 1):
        progress(f"Round {number} of {rounds}: a speech request, then a voice session…")
        speech.append(await _cost(server, stall_speech(server)))
        session.append(await _cost(server, stall_session(server, question)))
        progress(f"  held {speech[-1].held_mb} MB and {session[-1].held_mb} MB")
    return {"rounds": rounds, "speech": _summary(speech), "session": _summary(session)}


def run_stalled_bench(config_path: Path | None, rounds: int, json_path: Path | None) -> int:
    if rounds < 1:
        print("locara-wyoming bench stalled: --rounds must be at least 1", file=sys.stderr)
        return 2
    progress("Speaking the question with Piper…")
    (question,) = utterances.synthesize([QUESTION])

    async def stalled(server: ServerProcess) -> dict[str, Any]:
        return await _stalled(server, rounds, question)

    publish(asyncio.run(measure_server(read_config(config_path), stalled)), json_path)
    return 0
