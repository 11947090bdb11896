"""`locara-wyoming bench services`: asr, tts and handle latency and memory of a real server.

The server runs as its own process with the configured models; requests go over
TCP exactly as Home Assistant sends them. Times are measured at the client.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk
from wyoming.handle import HandledChunk

from ..audio_format import PcmFormat
from . import client
from .server_process import ServerProcess

TTS_TEXT = "The living room lights are now off, and the front door is locked."
ASR_TEXT = "What will the weather be like tomorrow morning in the city?"
ASR_SECONDS = 3.0
HANDLE_TEXT = "Give me one idea for dinner tonight."


def _summary(values: list[float], digits: int = 1) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), digits),
        "p90": round(float(np.percentile(values, 90)), digits),
        "min": round(min(values), digits),
    }


def _rss_mb(pid: int) -> float:
    return round(float(psutil.Process(pid).memory_info().rss) / 2**20, 1)


def _utterance(reply: client.Reply, seconds: float) -> tuple[bytes, PcmFormat]:
    """The reply's speech, padded with silence (or cut) to exactly `seconds`."""
    audio = reply.audio_format()
    wanted = int(seconds * audio.rate) * audio.frame_bytes
    pcm = reply.audio()[:wanted]
    return pcm + b"\0" * (wanted - len(pcm)), audio


async def _measure(server: ServerProcess, runs: int) -> dict[str, Any]:
    first_audio, rtf = [], []
    for _ in range(runs):
        reply = await client.synthesize(server.uri, TTS_TEXT)
        audio = reply.audio_format()
        seconds = len(reply.audio()) / (audio.rate * audio.frame_bytes)
        first_audio.append(1000 * reply.first_after_send(AudioChunk.is_type))
        rtf.append((reply.events[-1].at - reply.sent_at) / seconds)
    print(f"  tts: first audio {_summary(first_audio)['p50']} ms p50", file=sys.stderr)

    pcm, audio = _utterance(await client.synthesize(server.uri, ASR_TEXT), ASR_SECONDS)
    asr_ms, words = [], ""
    for _ in range(runs):
        reply = await client.transcribe(server.uri, pcm, audio)
        asr_ms.append(1000 * reply.first_after_send(Transcript.is_type))
        words = client.transcript_text(reply)
    print(f"  asr: {_summary(asr_ms)['p50']} ms p50 for {ASR_SECONDS} s", file=sys.stderr)

    first_chunk, whole = [], []
    for _ in range(runs):
        reply = await client.handle(server.uri, HANDLE_TEXT, uuid.uuid4().hex)
        first_chunk.append(1000 * reply.first_after_send(HandledChunk.is_type))
        whole.append(1000 * (reply.events[-1].at - reply.sent_at))
    print(f"  handle: first chunk {_summary(first_chunk)['p50']} ms p50", file=sys.stderr)

    return {
        "tts": {
            "text": TTS_TEXT,
            "first_audio_ms": _summary(first_audio),
            "real_time_factor": _summary(rtf, digits=3),
        },
        "asr": {"audio_s": ASR_SECONDS, "transcript": words, "ms": _summary(asr_ms)},
        "handle": {"first_chunk_ms": _summary(first_chunk), "reply_ms": _summary(whole)},
    }


async def _run(config_text: str, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="locara-bench-") as workdir:
        server = ServerProcess(Path(workdir), config_text, ["--no-zeroconf"])
        print("Starting the server (loading and warming every model)…", file=sys.stderr)
        started = time.perf_counter()
        await server.start()
        startup_s = time.perf_counter() - started
        try:
            rss_ready = _rss_mb(server.pid)
            print(f"  ready in {startup_s:.1f} s, {rss_ready} MB resident", file=sys.stderr)
            results = await _measure(server, runs)
            results["rss_mb"] = {"after_warm_up": rss_ready, "after_bench": _rss_mb(server.pid)}
        finally:
            await server.stop()
    results["startup_s"] = round(startup_s, 1)
    results["runs"] = runs
    results["machine"] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    return results


def run_services_bench(config_path: Path | None, runs: int, json_path: Path | None) -> int:
    if runs < 1:
        print("locara-wyoming bench services: --runs must be at least 1", file=sys.stderr)
        return 2
    config_text = config_path.read_text(encoding="utf-8") if config_path else ""
    results = asyncio.run(_run(config_text, runs))
    text = json.dumps(results, indent=2)
    print(text)
    if json_path is not None:
        json_path.write_text(text + "\n", encoding="utf-8")
    return 0
