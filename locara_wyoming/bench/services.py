"""`locara-wyoming bench services`: asr, tts and handle latency and memory of a real server.

The server runs as its own process with the configured models; requests go over
TCP exactly as Home Assistant sends them. Times are measured at the client.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from wyoming.asr import Transcript
from wyoming.audio import AudioChunk
from wyoming.handle import HandledChunk

from ..audio_format import PcmFormat
from . import client
from .harness import measure_server, read_config
from .report import progress, publish, summary
from .server_process import ServerProcess
from .word_errors import word_errors

TTS_TEXT = "The living room lights are now off, and the front door is locked."
ASR_TEXT = "What will the weather be like tomorrow morning in the city?"
ASR_SECONDS = 3.0
HANDLE_TEXT = "Give me one idea for dinner tonight."


def _utterance(reply: client.ServerReply, seconds: float) -> tuple[bytes, PcmFormat]:
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
        seconds = len(reply.audio()) / audio.bytes_per_second
        first_audio.append(1000 * reply.first_after_send(AudioChunk.is_type))
        rtf.append((reply.events[-1].at - reply.sent_at) / seconds)
    progress(f"  tts: first audio {summary(first_audio)['p50']} ms p50")

    pcm, audio = _utterance(await client.synthesize(server.uri, ASR_TEXT), ASR_SECONDS)
    asr_ms, heard = [], []
    for _ in range(runs):
        reply = await client.transcribe(server.uri, pcm, audio)
        asr_ms.append(1000 * reply.first_after_send(Transcript.is_type))
        heard.append(client.transcript_text(reply))
    wer = round(word_errors([ASR_TEXT] * runs, heard).rate, 3)
    progress(f"  asr: {summary(asr_ms)['p50']} ms p50 for {ASR_SECONDS} s, word error rate {wer}")

    first_chunk, whole = [], []
    for _ in range(runs):
        reply = await client.handle(server.uri, HANDLE_TEXT, uuid.uuid4().hex)
        first_chunk.append(1000 * reply.first_after_send(HandledChunk.is_type))
        whole.append(1000 * (reply.events[-1].at - reply.sent_at))
    progress(f"  handle: first chunk {summary(first_chunk)['p50']} ms p50")

    return {
        "tts": {
            "text": TTS_TEXT,
            "first_audio_ms": summary(first_audio),
            "real_time_factor": summary(rtf, digits=3),
        },
        "asr": {
            "audio_s": ASR_SECONDS,
            "text": ASR_TEXT,
            "transcript": heard[-1],
            "ms": summary(asr_ms),
            "word_error_rate": wer,
        },
        "handle": {"first_chunk_ms": summary(first_chunk), "reply_ms": summary(whole)},
    }


def run_services_bench(config_path: Path | None, runs: int, json_path: Path | None) -> int:
    if runs < 1:
        progress("locara-wyoming bench services: --runs must be at least 1")
        return 2
    results = asyncio.run(measure_server(read_config(config_path), lambda s: _measure(s, runs)))
    results["runs"] = runs
    publish(results, json_path)
    return 0
