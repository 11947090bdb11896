"""`locara-wyoming bench satellite`: what the room satellite costs, run as a room runs it.

The satellite runs as its own process (from `.venv-satellite` when it exists: the
satellite alone, as a Raspberry Pi has it) with WAV files as microphone and speaker,
against a fresh server. One run asks for a long story and lets it play out (memory,
CPU, underruns); another interrupts stories (from the server's flush signal to the
speaker's silence, as the satellite's playback buffer times it).
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from .harness import measure_server
from .report import cpu_seconds, progress, publish, rss_mb, summary
from .server_process import ServerProcess
from .utterances import INTERRUPTION, MIC_RATE, STORY_REQUEST, synthesize, write_wav

SATELLITE_PYTHON = Path(".venv-satellite/bin/python")
STORY_CONFIG = """
[llm]
max_tokens = 400

[[personas]]
name = "storyteller"
system_prompt = "You are a storyteller. Tell long stories of many sentences."
"""
WAKE = "Okay Nabu."
_PLAYED = re.compile(r"Played a reply of ([\d.]+) s, (\d+) underruns")
_FLUSHED = re.compile(r"Flushed: silent ([\d.]+) ms after the signal")


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(MIC_RATE * seconds), np.float32)


async def run_satellite(python: Path, uri: str, mic: Path, workdir: Path) -> dict[str, Any]:
    """Run the satellite on `mic` until it exits; its log, peak memory and CPU share."""
    process = await asyncio.create_subprocess_exec(
        str(python), "-m", "locara_satellite", "--server", uri, "--name", "bench-room",
        "--mic-file", str(mic), "--snd-file", str(workdir / "speaker.wav"),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    log: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            log.append(line.decode(errors="replace").rstrip())

    reader = asyncio.create_task(read())
    started, peak = time.perf_counter(), 0.0
    cpu = 0.0
    while process.returncode is None:
        try:
            peak, cpu = max(peak, rss_mb(process.pid)), cpu_seconds(process.pid)
        except psutil.NoSuchProcess:  # it ended between two looks
            break
        try:
            await asyncio.wait_for(process.wait(), 0.5)
        except TimeoutError:
            continue
    await process.wait()
    await reader
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"the satellite failed ({process.returncode}):\n" + "\n".join(log[-20:]))
    return {"log": log, "rss_mb": peak, "cpu_pct": round(100 * cpu / wall, 2), "wall_s": wall}


def run_satellite_bench(rounds: int, python: Path | None, json_path: Path | None) -> int:
    if rounds < 1:
        print("locara-wyoming bench satellite: --rounds must be at least 1", file=sys.stderr)
        return 2
    python = python or (SATELLITE_PYTHON if SATELLITE_PYTHON.exists() else Path(sys.executable))
    progress(f"Satellite: {python}")
    wake, story, stop = synthesize([WAKE, STORY_REQUEST, INTERRUPTION])
    long_reply = np.concatenate([_silence(1.0), wake, _silence(0.4), story, _silence(50.0)])
    interrupted = [_silence(1.0), wake, _silence(0.4)]
    for _ in range(rounds):
        interrupted += [story, _silence(5.0), stop, _silence(4.0)]

    async def measurement(server: ServerProcess) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="locara-satellite-bench-") as folder:
            workdir = Path(folder)
            progress("A long story, played out…")
            played = await run_satellite(
                python, server.uri, write_wav(workdir / "story.wav", long_reply), workdir
            )
            progress(f"Interrupting {rounds} stories…")
            flushed = await run_satellite(
                python, server.uri,
                write_wav(workdir / "interrupted.wav", np.concatenate(interrupted)), workdir,
            )  # fmt: skip
        replies = [m for line in played["log"] if (m := _PLAYED.search(line))]
        silences = [float(m[1]) for line in flushed["log"] if (m := _FLUSHED.search(line))]
        return {
            "satellite_rss_mb": max(played["rss_mb"], flushed["rss_mb"]),
            "satellite_cpu_pct_of_core": played["cpu_pct"],
            "longest_reply_s": max((float(m[1]) for m in replies), default=0.0),
            "underruns": sum(int(m[2]) for m in replies),
            "flush_to_silence_ms": summary(silences),
            "bargeins": len(silences),
            "details": {
                "story_run_s": round(played["wall_s"], 1),
                "bargein_run_cpu_pct_of_core": flushed["cpu_pct"],
                "satellite_python": str(python),
            },
        }

    results = asyncio.run(measure_server(STORY_CONFIG, measurement))
    publish(results, json_path)
    return 0
