"""`locara-wyoming bench voice`: voice-to-voice latency, barge-in and load of real sessions.

Scripted satellites (a simulated microphone and speaker around the real session
client) talk to a real server process over TCP. Every time comes from one
monotonic clock on the satellite side:

- voice-to-voice: from the last voiced sample the microphone sent to the moment
  the reply became audible at the speaker (after the jitter buffer's pre-roll);
  early replies, missed ends and timeouts as `turns` counts them, per set: the
  clean questions, and the paused set (people who stop mid-thought);
- barge-in: from the first voiced sample of an interruption to the moment the
  speaker dropped the reply;
- false barge-in: a reply cut off although nobody spoke over it (the speaker's
  own echo, at `echo_gain`, reaches the microphone as in a room).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import utterances
from .harness import measure_server, read_config
from .options import VoiceBenchOptions
from .report import cpu_seconds, progress, publish, summary
from .server_process import ServerProcess
from .stock import StockChain
from .turns import TURN_GAP_S, Tally, converse, satellite
from .utterances import Question

INTERRUPT_AFTER_S = 1.0
SET_FIELDS = ("asked", "turns", "v2v_ms", "early_replies", "missed_ends", "timeouts", "timed_out")
"""What the headline says of each set."""


@dataclass
class BenchSpeech:
    questions: list[Question]
    paused: list[Question]
    story_request: np.ndarray
    interruption: np.ndarray


async def _bargeins(
    server: ServerProcess, spoken: BenchSpeech, options: VoiceBenchOptions
) -> dict[str, Any]:
    latencies: list[float] = []
    missed = timeouts = 0
    room = satellite(server, "bench-bargein", options)
    await room.start()
    try:
        for _ in range(options.bargeins):
            try:
                round_ = await room.talk_over(
                    spoken.story_request, spoken.interruption, INTERRUPT_AFTER_S
                )
            except TimeoutError:  # no story, or no answer to the interruption
                timeouts += 1
                missed += 1
                continue
            if round_.bargein_ms is None:
                missed += 1
            else:
                latencies.append(round_.bargein_ms)
            await asyncio.sleep(TURN_GAP_S)
    finally:
        await room.stop()
    return {
        "rounds": options.bargeins,
        "bargein_ms": summary(latencies),
        "missed": missed,
        "timeouts": timeouts,
    }


async def _cpu_share(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU use over `seconds`, in percent of one core."""
    before = [cpu_seconds(pid) for pid in pids]
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    return [100 * (cpu_seconds(pid) - b) / elapsed for pid, b in zip(pids, before, strict=True)]


async def _idle_cost(server: ServerProcess, options: VoiceBenchOptions) -> dict[str, float]:
    """CPU per connected, silent satellite: on the server and in this (client) process."""
    pids = [server.pid, os.getpid()]
    baseline = await _cpu_share(pids, options.idle_seconds)
    rooms = [satellite(server, f"bench-idle-{n}", options) for n in range(options.sessions)]
    await asyncio.gather(*(room.start() for room in rooms))
    try:
        loaded = await _cpu_share(pids, options.idle_seconds)
    finally:
        await asyncio.gather(*(room.stop() for room in rooms))
    server_pct, client_pct = (
        round((load - base) / options.sessions, 2)
        for load, base in zip(loaded, baseline, strict=True)
    )
    return {
        "satellites": options.sessions,
        "server_pct_of_core_per_satellite": server_pct,
        "client_pct_of_core_per_satellite": client_pct,
    }


def _spoken(options: VoiceBenchOptions) -> BenchSpeech:
    progress("Speaking the utterances with Piper…")
    voice = utterances.load_voice()
    story, interruption = utterances.synthesize(
        [utterances.STORY_REQUEST, utterances.INTERRUPTION], voice
    )
    if options.utterances is not None:
        questions = utterances.load_wavs(options.utterances)
    else:
        questions = utterances.clean_set(voice)
    paused = utterances.paused_set(voice) if options.paused_turns else []
    return BenchSpeech(questions, paused, story, interruption)


def _cycle(questions: list[Question], count: int, offset: int = 0) -> list[Question]:
    return [questions[(offset + n) % len(questions)] for n in range(count)]


async def _measure(
    server: ServerProcess, spoken: BenchSpeech, options: VoiceBenchOptions
) -> dict[str, Any]:
    progress(f"One session, {options.turns} turns…")
    single = await converse(
        server, "bench-single", _cycle(spoken.questions, options.turns), options
    )
    progress(f"  v2v p50 {summary(single.v2v_ms).get('p50')} ms")
    results: dict[str, Any] = {"single_session": single.report()}

    if options.paused_turns:
        progress(f"One session, {options.paused_turns} turns of the paused set…")
        paused = await converse(
            server, "bench-paused", _cycle(spoken.paused, options.paused_turns), options
        )
        progress(
            f"  v2v p50 {summary(paused.v2v_ms).get('p50')} ms, "
            f"{paused.early_replies} early replies, {paused.missed_ends} missed ends"
        )
        results["paused_set"] = paused.report()

    progress(f"Barge-in, {options.bargeins} rounds…")
    results["bargein"] = await _bargeins(server, spoken, options) if options.bargeins else {}

    progress(f"{options.sessions} sessions at once, {options.turns_per_session} turns each…")
    tallies = await asyncio.gather(
        *(
            converse(
                server,
                f"bench-room-{n}",
                _cycle(spoken.questions, options.turns_per_session, offset=n),
                options,
            )
            for n in range(options.sessions)
        )
    )
    together = Tally.empty()
    for tally in tallies:
        together.add(tally)
    results["concurrent_sessions"] = {"sessions": options.sessions, **together.report()}

    progress(f"Idle satellites: {options.idle_seconds} s without, then with {options.sessions}…")
    results["idle"] = await _idle_cost(server, options)

    if options.compare_stock:
        results["stock"] = await _stock(server, spoken)
    first_set = "clean" if options.utterances is None else "utterances"
    return {**_headline(results, first_set), "details": results}


async def _stock(server: ServerProcess, spoken: BenchSpeech) -> dict[str, Any]:
    progress("The stock chain: wyoming-faster-whisper → handle → wyoming-piper…")
    async with StockChain() as stock:
        turns = [await stock.turn(q.samples, server.uri) for q in spoken.questions]
    return {
        "versions": StockChain.versions(),
        "turns": len(turns),
        "v2v_ms": summary([t["v2v_ms"] for t in turns]),
        "stages_ms_p50": {
            name: summary([t[name] for t in turns])["p50"] for name in turns[0] if name != "v2v_ms"
        },
    }


def _ratio(numerator: dict[str, float], denominator: dict[str, float]) -> float | None:
    """p50 over p50, or None when either has no measurement."""
    if "p50" not in numerator or not denominator.get("p50"):
        return None
    return round(numerator["p50"] / denominator["p50"], 2)


def _headline(results: dict[str, Any], first_set: str) -> dict[str, Any]:
    """The numbers the targets are stated in, at the top of the report; `first_set`
    names the single session's utterances."""
    single = results["single_session"]
    together = results["concurrent_sessions"]
    sets = {first_set: single} | (
        {"paused": results["paused_set"]} if "paused_set" in results else {}
    )
    headline: dict[str, Any] = {
        "v2v_ms": single["v2v_ms"],
        "stages_ms": single["stages_ms_p50"],
        "sets": {name: {key: tally[key] for key in SET_FIELDS} for name, tally in sets.items()},
        "bargein_ms": results["bargein"].get("bargein_ms", {}),
        "false_bargein": single["false_bargein"] + together["false_bargein"],
        "turns": single["turns"] + together["turns"],
        "silent_replies": single["silent_replies"] + together["silent_replies"],
        "timeouts": sum(
            part.get("timeouts", 0) for part in (*sets.values(), together, results["bargein"])
        ),
        "concurrent_v2v_ms": together["v2v_ms"],
        "concurrent_p50_over_single_p50": _ratio(together["v2v_ms"], single["v2v_ms"]),
        "idle_satellite_pct_of_core": results["idle"]["server_pct_of_core_per_satellite"],
    }
    if "stock" in results:
        headline["stock_v2v_ms"] = results["stock"]["v2v_ms"]
        headline["speedup_vs_stock"] = _ratio(results["stock"]["v2v_ms"], single["v2v_ms"])
    return headline


def run_voice_bench(
    config_path: Path | None, options: VoiceBenchOptions, json_path: Path | None
) -> int:
    if problems := options.problems():
        for problem in problems:
            progress(f"locara-wyoming bench voice: {problem}")
        return 2
    spoken = _spoken(options)
    results = asyncio.run(
        measure_server(read_config(config_path), lambda s: _measure(s, spoken, options))
    )
    results["options"] = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in options.__dict__.items()
    }
    publish(results, json_path)
    return 0
