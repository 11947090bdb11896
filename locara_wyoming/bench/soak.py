"""`locara-wyoming bench soak`: rooms in continuous conversation for minutes on end.

Each scripted satellite asks the built-in questions in turn; every fourth turn it
asks for a story and talks over it, and every seventh it drops its connection and
comes back resuming its session. The server's resident memory and open file
descriptors are taken after warm-up and again at the end, once every room has
hung up: a leak shows as growth between the two.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from ..client.scripted import ScriptedSatellite
from . import utterances
from .harness import measure_server, read_config
from .report import progress, publish, rss_mb
from .server_process import ServerProcess

STORY_EVERY = 4
RECONNECT_EVERY = 7
REPLY_TIMEOUT_S = 120.0
INTERRUPT_AFTER_S = 1.5
SETTLE_S = 3.0


@dataclass
class RoomTally:
    turns: int = 0
    failed_turns: int = 0
    bargeins: int = 0
    bargeins_missed: int = 0
    """Stories still playing when talked over, yet not cut off."""
    reconnects: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Spoken:
    questions: list[np.ndarray]
    story: np.ndarray
    interruption: np.ndarray


async def _ask(room: ScriptedSatellite, question: np.ndarray) -> None:
    said = await room.say(question)
    _, reply = await room.answer_after(said.voiced_end, REPLY_TIMEOUT_S)
    if reply is not None:
        await asyncio.wait_for(reply.done.wait(), REPLY_TIMEOUT_S)


async def _room(server: ServerProcess, name: str, spoken: Spoken, until: float) -> RoomTally:
    tally = RoomTally()
    room = ScriptedSatellite(server.uri, name)
    await room.start()
    try:
        while time.monotonic() < until:
            turn = tally.turns + 1
            errors_before = len(room.seen_of("error"))
            try:
                if turn % STORY_EVERY == 0:
                    # A persona told to answer briefly tells short stories: one that had
                    # ended before it was talked over is no barge-in either way.
                    round_ = await room.talk_over(
                        spoken.story, spoken.interruption, INTERRUPT_AFTER_S, REPLY_TIMEOUT_S
                    )
                    cut = round_.story.flushed_at is not None
                    tally.bargeins += round_.still_playing and cut
                    tally.bargeins_missed += round_.still_playing and not cut
                else:
                    await _ask(room, spoken.questions[turn % len(spoken.questions)])
                if len(errors := room.seen_of("error")) > errors_before:
                    raise RuntimeError(errors[-1].event.data.get("text", "error"))
            except (TimeoutError, RuntimeError, ConnectionError, OSError) as error:
                tally.failed_turns += 1
                tally.failures.append(f"{name} turn {turn}: {error!r}")
            tally.turns = turn
            if turn % RECONNECT_EVERY == 0:
                assert room.client.started is not None
                session_id = room.client.started.session_id
                await room.stop()
                room = ScriptedSatellite(server.uri, name, resume=session_id)
                await room.start()
                tally.reconnects += 1
    finally:
        await room.stop()
    return tally


def _fds(pid: int) -> int:
    return int(psutil.Process(pid).num_fds())


async def _soak(
    server: ServerProcess, spoken: Spoken, minutes: float, sessions: int
) -> dict[str, Any]:
    rss_start, fds_start = rss_mb(server.pid), _fds(server.pid)
    until = time.monotonic() + 60 * minutes
    progress(f"{sessions} rooms talking for {minutes:g} minutes…")
    by_minute: list[float] = []

    async def sample() -> None:  # the trend tells arenas filling up from a leak
        while True:
            await asyncio.sleep(60)
            by_minute.append(rss_mb(server.pid))
            progress(f"  minute {len(by_minute)}: {by_minute[-1]} MB resident")

    sampler = asyncio.create_task(sample())
    try:
        tallies = await asyncio.gather(
            *(_room(server, f"soak-{n}", spoken, until) for n in range(sessions))
        )
    finally:
        sampler.cancel()
    await asyncio.sleep(SETTLE_S)  # the server closes the last sessions
    failures = [failure for tally in tallies for failure in tally.failures]
    return {
        "minutes": minutes,
        "sessions": sessions,
        "turns": sum(t.turns for t in tallies),
        "failed_turns": sum(t.failed_turns for t in tallies),
        "bargeins": sum(t.bargeins for t in tallies),
        "bargeins_missed": sum(t.bargeins_missed for t in tallies),
        "reconnects": sum(t.reconnects for t in tallies),
        "rss_mb_start": rss_start,
        "rss_mb_end": rss_mb(server.pid),
        "fds_start": fds_start,
        "fds_end": _fds(server.pid),
        "rss_mb_by_minute": by_minute,
        "failures": failures[:20],
    }


def run_soak_bench(
    config_path: Path | None, minutes: float, sessions: int, json_path: Path | None
) -> int:
    problems = []
    if minutes <= 0:
        problems.append("--minutes must be more than 0")
    if sessions < 1:
        problems.append("--sessions must be at least 1")
    if problems:
        for problem in problems:
            print(f"locara-wyoming bench soak: {problem}", file=sys.stderr)
        return 2
    progress("Speaking the utterances with Piper…")
    story, interruption = utterances.synthesize([utterances.STORY_REQUEST, utterances.INTERRUPTION])
    spoken = Spoken(utterances.synthesize(utterances.QUESTIONS), story, interruption)
    results = asyncio.run(
        measure_server(read_config(config_path), lambda s: _soak(s, spoken, minutes, sessions))
    )
    publish(results, json_path)
    return 0
