"""`locara-wyoming bench soak`: rooms in continuous conversation for minutes on end.

Each scripted satellite asks the built-in questions in turn; every fourth turn it
asks for a story and talks over it, and every seventh it drops its connection and
comes back resuming its session. First the rooms warm the server up by running that
script for `--warm-up-minutes`, then every room hangs up: the first conversations fill
the allocators' arenas and the models' buffers to their working size, and short rounds
of a few turns each reach less of it than the script does (docs/benchmarks.md). The
server's resident memory and open file descriptors are taken then, with no room
connected, and again at the end, once every room has hung up: a leak shows as growth
between the two. Every `PAUSE_EVERY_MIN` the rooms hang up together for a reading of
the same kind, so that a run shows whether the idle level still rises or has settled.
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

from ..client.scripted import ScriptedSatellite, within
from . import utterances
from .harness import measure_server, read_config
from .report import progress, publish, rss_mb, summary
from .server_process import ServerProcess

STORY_EVERY = 4
RECONNECT_EVERY = 7
REPLY_TIMEOUT_S = 120.0
INTERRUPT_AFTER_S = 1.5
SETTLE_S = 3.0
FAILURES = (TimeoutError, RuntimeError, ConnectionError, OSError)
"""What fails a turn (`SessionFailedError` is a RuntimeError); anything else is a bug here."""
PAUSE_EVERY_MIN = 10.0
"""Every this many minutes every room finishes its turn and hangs up, and the server's
resident memory is read with none connected, as at the start and the end: idle readings
through the run, which the readings while rooms talk (up to 125 MB of live buffers
above the idle level) cannot give."""
BARGEIN_WINDOW_S = 1.0
"""A story that ends this soon after the interruption began ended on its own: a barge-in
takes about 0.25 s (`bench voice`), so a second leaves a loaded server room."""


@dataclass
class RoomTally:
    turns: int = 0
    failed_turns: int = 0
    bargeins: int = 0
    bargein_ms: list[float] = field(default_factory=list)
    bargeins_missed: int = 0
    """Stories still playing a `BARGEIN_WINDOW_S` into the interruption, yet not cut off."""
    stories_ended_first: int = 0
    """Stories that ended before the interruption, or within `BARGEIN_WINDOW_S` of it."""
    reconnects: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SoakSpeech:
    questions: list[np.ndarray]
    story: np.ndarray
    interruption: np.ndarray


async def _ask(room: ScriptedSatellite, question: np.ndarray) -> None:
    said = await room.say(question)
    _, reply = await room.answer_after(said.voiced_end, REPLY_TIMEOUT_S)
    if reply is not None:
        async with within(REPLY_TIMEOUT_S, "the answer to play out"):
            await reply.done.wait()


async def _room(
    server: ServerProcess, name: str, spoken: SoakSpeech, until: float, turns: int | None = None
) -> RoomTally:
    """Turns until `until` (or `turns` of them, if sooner)."""
    tally = RoomTally()
    room = ScriptedSatellite(server.uri, name)
    await room.start()
    try:
        while time.monotonic() < until and (turns is None or tally.turns < turns):
            turn = tally.turns + 1
            errors_before = len(room.seen_of("error"))
            try:
                if turn % STORY_EVERY == 0:
                    # A persona told to answer briefly tells short stories: one that ends
                    # before a barge-in could cut it is no barge-in either way.
                    round_ = await room.talk_over(
                        spoken.story, spoken.interruption, INTERRUPT_AFTER_S, REPLY_TIMEOUT_S
                    )
                    if not round_.still_playing or round_.ended_within(BARGEIN_WINDOW_S):
                        tally.stories_ended_first += 1
                    elif round_.bargein_ms is None:
                        tally.bargeins_missed += 1
                    else:
                        tally.bargeins += 1
                        tally.bargein_ms.append(round_.bargein_ms)
                else:
                    await _ask(room, spoken.questions[turn % len(spoken.questions)])
                if len(errors := room.seen_of("error")) > errors_before:
                    raise RuntimeError(errors[-1].event.data.get("text", "error"))
            except FAILURES as error:
                tally.failed_turns += 1
                tally.failures.append(f"{_now()} {name} turn {turn}: {error!r}")
            tally.turns = turn
            if turn % RECONNECT_EVERY == 0 or room.ended:  # a lost session comes back too
                try:
                    room = await _reconnect(server, room, tally, name)
                    tally.reconnects += 1
                except FAILURES as error:
                    tally.failures.append(
                        f"{_now()} {name} reconnecting after turn {turn}: {error!r}"
                    )
                    await asyncio.sleep(SETTLE_S)  # and again after the next turn
    finally:
        await _hang_up(room, tally, name)
    return tally


async def _hang_up(room: ScriptedSatellite, tally: RoomTally, name: str) -> None:
    try:
        await room.stop()
    except Exception as error:  # whatever ended the session is a finding:
        # report it and go on (a KeyError in the client once ended the whole bench).
        tally.failures.append(f"{_now()} {name} hanging up: {error!r}")


async def _reconnect(
    server: ServerProcess, room: ScriptedSatellite, tally: RoomTally, name: str
) -> ScriptedSatellite:
    """Hang up and come back resuming the same session."""
    started = room.client.started
    await _hang_up(room, tally, name)
    resumed = ScriptedSatellite(
        server.uri, name, resume=started.session_id if started is not None else None
    )
    await resumed.start()
    return resumed


def _now() -> str:
    """Wall-clock time, as the server's log has it."""
    return time.strftime("%H:%M:%S")


def _fds(pid: int) -> int:
    return int(psutil.Process(pid).num_fds())


async def _rooms(
    server: ServerProcess, spoken: SoakSpeech, sessions: int, until: float, turns: int | None = None
) -> list[RoomTally]:
    """Every room talking at once; returns once all have hung up and the server settled."""
    tallies = await asyncio.gather(
        *(_room(server, f"soak-{n}", spoken, until, turns) for n in range(sessions))
    )
    await asyncio.sleep(SETTLE_S)  # the server closes the last sessions
    return list(tallies)


def slope_per_hour(minutes: list[float], levels: list[float]) -> float:
    """The least-squares rise of the idle levels, in MB an hour: what a server that runs
    for months would grow by, were the rise to go on."""
    rise_per_minute = np.polyfit(minutes, levels, 1)[0]
    return round(60 * float(rise_per_minute), 1)


async def _soak(
    server: ServerProcess, spoken: SoakSpeech, minutes: float, sessions: int, warm_up_min: float
) -> dict[str, Any]:
    rss_idle = rss_mb(server.pid)
    progress(f"Warming up: {sessions} rooms talking for {warm_up_min:g} minutes…")
    warm_up = await _rooms(server, spoken, sessions, time.monotonic() + 60 * warm_up_min)
    rss_start, fds_start = rss_mb(server.pid), _fds(server.pid)
    progress(f"  {rss_start} MB resident with no room connected")
    began = time.monotonic()
    until = began + 60 * minutes
    progress(f"{sessions} rooms talking for {minutes:g} minutes…")
    by_minute: list[float] = []

    async def sample() -> None:  # the trend tells arenas filling up from a leak
        while True:
            await asyncio.sleep(60)
            by_minute.append(rss_mb(server.pid))
            progress(f"  minute {len(by_minute)}: {by_minute[-1]} MB resident")

    sampler = asyncio.create_task(sample())
    soaked: list[RoomTally] = []
    pause_minutes: list[float] = []
    at_pauses: list[float] = []
    try:
        while (now := time.monotonic()) < until:
            soaked += await _rooms(server, spoken, sessions, min(until, now + 60 * PAUSE_EVERY_MIN))
            pause_minutes.append(round((time.monotonic() - began) / 60, 1))
            at_pauses.append(rss_mb(server.pid))
            progress(f"  pause {len(at_pauses)}: {at_pauses[-1]} MB with no room connected")
    finally:
        sampler.cancel()
    tallies = warm_up + soaked
    failures = [failure for tally in tallies for failure in tally.failures]
    return {
        "minutes": minutes,
        "sessions": sessions,
        "turns": sum(t.turns for t in tallies),
        "warm_up_turns": sum(t.turns for t in warm_up),
        "warm_up_minutes": warm_up_min,
        "failed_turns": sum(t.failed_turns for t in tallies),
        "bargeins": sum(t.bargeins for t in tallies),
        "bargein_ms": summary([ms for t in tallies for ms in t.bargein_ms]),
        "bargeins_missed": sum(t.bargeins_missed for t in tallies),
        "stories_ended_first": sum(t.stories_ended_first for t in tallies),
        "reconnects": sum(t.reconnects for t in tallies),
        "rss_mb_before_warm_up": rss_idle,
        "rss_mb_start": rss_start,
        "rss_mb_end": at_pauses[-1],
        "rss_mb_at_pauses": at_pauses,
        "minutes_at_pauses": pause_minutes,
        "rss_mb_per_hour": slope_per_hour([0.0, *pause_minutes], [rss_start, *at_pauses]),
        "fds_start": fds_start,
        "fds_end": _fds(server.pid),
        "rss_mb_by_minute": by_minute,
        "failures": failures[:20],
        "server_warnings": len(warnings := _warnings(server)),
        "server_warnings_first": warnings[:20],
        "server_stalls": server.log.stalls(),
    }


def _warnings(server: ServerProcess) -> list[str]:
    """The server's warnings and errors (loop stalls, dropped clients, failed turns)."""
    return [line for line in server.log if " WARNING " in line or " ERROR " in line]


def run_soak_bench(
    config_path: Path | None,
    minutes: float,
    sessions: int,
    warm_up_min: float,
    json_path: Path | None,
) -> int:
    problems = []
    if minutes <= 0:
        problems.append("--minutes must be more than 0")
    if sessions < 1:
        problems.append("--sessions must be at least 1")
    if warm_up_min < 0:
        problems.append("--warm-up-minutes must not be negative")
    if problems:
        for problem in problems:
            print(f"locara-wyoming bench soak: {problem}", file=sys.stderr)
        return 2
    progress("Speaking the utterances with Piper…")
    story, interruption = utterances.synthesize([utterances.STORY_REQUEST, utterances.INTERRUPTION])
    spoken = SoakSpeech(utterances.synthesize(utterances.QUESTIONS), story, interruption)

    async def soak(server: ServerProcess) -> dict[str, Any]:
        return await _soak(server, spoken, minutes, sessions, warm_up_min)

    results = asyncio.run(measure_server(read_config(config_path), soak))
    publish(results, json_path)
    return 0
