"""`locara-wyoming bench voice`: voice-to-voice latency, barge-in and load of real sessions.

Scripted satellites (a simulated microphone and speaker around the real session
client) talk to a real server process over TCP. Every time comes from one
monotonic clock on the satellite side:

- voice-to-voice: from the last voiced sample the microphone sent to the moment
  the reply became audible at the speaker (after the jitter buffer's pre-roll);
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

from ..client.scripted import ScriptedSatellite
from . import utterances
from .harness import measure_server, read_config
from .options import VoiceBenchOptions
from .report import cpu_seconds, progress, publish, summary
from .server_process import ServerProcess
from .stock import StockChain

TURN_GAP_S = 0.6
"""Silence between a reply's end and the next utterance, as a person leaves it."""
INTERRUPT_AFTER_S = 1.0
STAGES = ("silence_wait_ms", "stt_ms", "llm_first_clause_ms", "tts_first_audio_ms")


@dataclass
class Spoken:
    questions: list[np.ndarray]
    story_request: np.ndarray
    interruption: np.ndarray


@dataclass
class Tally:
    """Turn measurements of one phase."""

    v2v_ms: list[float]
    stages: dict[str, list[float]]
    false_bargeins: int = 0
    silent_replies: int = 0

    @classmethod
    def empty(cls) -> Tally:
        return cls([], {name: [] for name in (*STAGES, "transport_and_playout_ms")})

    def report(self) -> dict[str, Any]:
        return {
            "turns": len(self.v2v_ms),
            "v2v_ms": summary(self.v2v_ms),
            "stages_ms_p50": {
                name: summary(values)["p50"] for name, values in self.stages.items() if values
            },
            "false_bargein": self.false_bargeins,
            "silent_replies": self.silent_replies,
        }


def _satellite(server: ServerProcess, name: str, options: VoiceBenchOptions) -> ScriptedSatellite:
    return ScriptedSatellite(
        server.uri, name, echo_gain=options.echo_gain, echo_delay_ms=options.echo_delay_ms
    )


async def _handled(room: ScriptedSatellite, reply_id: str, timeout_s: float = 60.0) -> Any:
    """The `handled` event that closes a reply's text."""
    async with asyncio.timeout(timeout_s):
        while True:
            for seen in room.seen_of("handled"):
                if seen.event.data.get("context", {}).get("reply_id") == reply_id:
                    return seen.event.data["context"]
            await asyncio.sleep(0.01)


async def _turn(room: ScriptedSatellite, question: np.ndarray, tally: Tally) -> None:
    said = await room.say(question)
    reply_id, reply = await room.answer_after(said.voiced_end)
    if reply is None:  # the LLM wrote nothing speakable ("…")
        tally.silent_replies += 1
        await asyncio.sleep(TURN_GAP_S)
        return
    v2v_ms = 1000 * (reply.audible_at or 0.0) - 1000 * said.voiced_end
    tally.v2v_ms.append(v2v_ms)
    await asyncio.wait_for(reply.done.wait(), 120)
    context = await _handled(room, reply_id)
    if reply.flushed_at is not None or context.get("interrupted"):
        tally.false_bargeins += 1
    timings = context.get("timings", {})
    for name in STAGES:
        if name in timings:
            tally.stages[name].append(float(timings[name]))
    if "speech_end_to_audio_ms" in timings:
        transport = v2v_ms - float(timings["speech_end_to_audio_ms"])
        tally.stages["transport_and_playout_ms"].append(transport)
    await asyncio.sleep(TURN_GAP_S)


async def _conversation(
    server: ServerProcess, name: str, questions: list[np.ndarray], options: VoiceBenchOptions
) -> Tally:
    tally = Tally.empty()
    room = _satellite(server, name, options)
    await room.start()
    try:
        for question in questions:
            await _turn(room, question, tally)
    finally:
        await room.stop()
    return tally


async def _bargeins(
    server: ServerProcess, spoken: Spoken, options: VoiceBenchOptions
) -> dict[str, Any]:
    latencies: list[float] = []
    missed = 0
    room = _satellite(server, "bench-bargein", options)
    await room.start()
    try:
        for _ in range(options.bargeins):
            round_ = await room.talk_over(
                spoken.story_request, spoken.interruption, INTERRUPT_AFTER_S
            )
            if round_.bargein_ms is None:
                missed += 1
            else:
                latencies.append(round_.bargein_ms)
            await asyncio.sleep(TURN_GAP_S)
    finally:
        await room.stop()
    return {"rounds": options.bargeins, "bargein_ms": summary(latencies), "missed": missed}


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
    rooms = [_satellite(server, f"bench-idle-{n}", options) for n in range(options.sessions)]
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


def _spoken(options: VoiceBenchOptions) -> Spoken:
    progress("Speaking the utterances with Piper…")
    story, interruption = utterances.synthesize([utterances.STORY_REQUEST, utterances.INTERRUPTION])
    if options.utterances is not None:
        questions = utterances.load_wavs(options.utterances)
    else:
        questions = utterances.synthesize(utterances.QUESTIONS)
    return Spoken(questions, story, interruption)


def _cycle(questions: list[np.ndarray], count: int, offset: int = 0) -> list[np.ndarray]:
    return [questions[(offset + n) % len(questions)] for n in range(count)]


async def _measure(
    server: ServerProcess, spoken: Spoken, options: VoiceBenchOptions
) -> dict[str, Any]:
    progress(f"One session, {options.turns} turns…")
    single = await _conversation(
        server, "bench-single", _cycle(spoken.questions, options.turns), options
    )
    progress(f"  v2v p50 {summary(single.v2v_ms)['p50']} ms")
    results: dict[str, Any] = {"single_session": single.report()}

    progress(f"Barge-in, {options.bargeins} rounds…")
    results["bargein"] = await _bargeins(server, spoken, options) if options.bargeins else {}

    progress(f"{options.sessions} sessions at once, {options.turns_per_session} turns each…")
    tallies = await asyncio.gather(
        *(
            _conversation(
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
        together.v2v_ms += tally.v2v_ms
        together.false_bargeins += tally.false_bargeins
        together.silent_replies += tally.silent_replies
        for name, values in tally.stages.items():
            together.stages[name] += values
    results["concurrent_sessions"] = {"sessions": options.sessions, **together.report()}

    progress(f"Idle satellites: {options.idle_seconds} s without, then with {options.sessions}…")
    results["idle"] = await _idle_cost(server, options)

    if options.compare_stock:
        results["stock"] = await _stock(server, spoken)
    return {**_headline(results), "details": results}


async def _stock(server: ServerProcess, spoken: Spoken) -> dict[str, Any]:
    progress("The stock chain: wyoming-faster-whisper → handle → wyoming-piper…")
    async with StockChain() as stock:
        turns = [await stock.turn(question, server.uri) for question in spoken.questions]
    return {
        "versions": StockChain.versions(),
        "turns": len(turns),
        "v2v_ms": summary([t["v2v_ms"] for t in turns]),
        "stages_ms_p50": {
            name: summary([t[name] for t in turns])["p50"] for name in turns[0] if name != "v2v_ms"
        },
    }


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    """The numbers the targets are stated in, at the top of the report."""
    single = results["single_session"]
    together = results["concurrent_sessions"]
    headline: dict[str, Any] = {
        "v2v_ms": single["v2v_ms"],
        "stages_ms": single["stages_ms_p50"],
        "bargein_ms": results["bargein"].get("bargein_ms", {}),
        "false_bargein": single["false_bargein"] + together["false_bargein"],
        "turns": single["turns"] + together["turns"],
        "silent_replies": single["silent_replies"] + together["silent_replies"],
        "concurrent_v2v_ms": together["v2v_ms"],
        "concurrent_p50_over_single_p50": round(
            together["v2v_ms"]["p50"] / single["v2v_ms"]["p50"], 2
        ),
        "idle_satellite_pct_of_core": results["idle"]["server_pct_of_core_per_satellite"],
    }
    if "stock" in results:
        stock_p50 = results["stock"]["v2v_ms"]["p50"]
        headline["stock_v2v_ms"] = results["stock"]["v2v_ms"]
        headline["speedup_vs_stock"] = round(stock_p50 / single["v2v_ms"]["p50"], 2)
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
