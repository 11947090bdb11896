"""The voice-session protocol of docs/protocol.md, spoken as raw bytes over a socket.

No wyoming or locara code is used on the client side: a satellite in another
language must be able to do exactly this.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from locara_wyoming.bench.server_process import ServerProcess

from .support.servers import TEST_CONFIG
from .support.speech import Speech

pytestmark = pytest.mark.models

Message = tuple[str, dict[str, Any], bytes]


def frame(event_type: str, data: dict[str, Any] | None = None, payload: bytes = b"") -> bytes:
    """header line {type, data_length, payload_length}, then data JSON, then payload."""
    body = json.dumps(data or {}).encode()
    header = {"type": event_type, "data_length": len(body), "payload_length": len(payload)}
    return json.dumps(header).encode() + b"\n" + body + payload


async def receive(reader: asyncio.StreamReader) -> Message:
    header = json.loads(await reader.readline())
    data = dict(header.get("data") or {})
    if header.get("data_length"):
        data.update(json.loads(await reader.readexactly(header["data_length"])))
    payload = (
        await reader.readexactly(header["payload_length"]) if header.get("payload_length") else b""
    )
    return header["type"], data, payload


async def receive_until(reader: asyncio.StreamReader, last: str) -> AsyncIterator[Message]:
    async with asyncio.timeout(120):
        while True:
            message = await receive(reader)
            yield message
            if message[0] == last:
                return


RUN_PIPELINE = {
    "start_stage": "asr",
    "end_stage": "tts",
    "restart_on_end": True,
    "locara": {"protocol": 1, "name": "raw-satellite", "area": "Lab", "capabilities": []},
}
MIC = {"rate": 16000, "width": 2, "channels": 1}


async def test_a_whole_turn_in_raw_bytes(server: ServerProcess, speech: Speech) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(frame("run-pipeline", RUN_PIPELINE))
    kind, session, _ = await receive(reader)
    assert kind == "locara-session"
    assert session["protocol"] == 1 and session["backend"].startswith("voice-pipeline-")
    assert session["input"] == MIC and session["output"]["rate"] == 22050
    assert session["frame_ms"] == 32.0

    question = speech.at_16k("What is the weather like today?")
    pcm = (np.concatenate([question, np.zeros(16000, np.float32)]) * 32767).astype("<i2").tobytes()
    writer.write(frame("audio-start", MIC))
    for start in range(0, len(pcm), 640):  # 20 ms chunks, at a microphone's pace
        writer.write(frame("audio-chunk", MIC, pcm[start : start + 640]))
        await asyncio.sleep(0.02)
    await writer.drain()

    messages = [m async for m in receive_until(reader, "handled-stop")]
    kinds = [kind for kind, _, _ in messages]
    order = [
        "voice-started", "voice-stopped", "transcript-start", "transcript-chunk", "transcript",
        "transcript-stop", "handled-start", "audio-start", "audio-stop", "handled", "handled-stop",
    ]  # fmt: skip
    positions = [kinds.index(kind) for kind in order]
    assert positions == sorted(positions), kinds
    assert "handled-chunk" in kinds and "audio-chunk" in kinds
    data = {kind: data for kind, data, _ in messages}
    reply_id = data["handled-start"]["context"]["reply_id"]
    assert data["audio-start"]["reply_id"] == reply_id
    assert data["handled"]["context"]["reply_id"] == reply_id
    assert "weather" in data["transcript"]["text"].lower()
    samples = sum(len(p) for kind, _, p in messages if kind == "audio-chunk") // 2
    assert samples > 22050 // 2

    writer.write(frame("played", {"reply_id": reply_id, "samples": samples}))
    writer.write(frame("ping", {"text": "alive?"}))
    kind, pong, _ = await receive(reader)
    assert (kind, pong["text"]) == ("pong", "alive?")
    writer.write(frame("audio-stop"))
    await writer.drain()
    async with asyncio.timeout(10):
        assert await reader.read() == b""
    writer.close()


async def test_bad_played_report_is_an_error_not_a_disconnect(server: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(frame("run-pipeline", RUN_PIPELINE))
    assert (await receive(reader))[0] == "locara-session"
    writer.write(frame("played", {"reply_id": 5, "samples": -1}))
    kind, error, _ = await receive(reader)
    assert kind == "error" and error["code"] == "bad-request"
    writer.write(frame("ping", {"text": "x"}))
    assert (await receive(reader))[0] == "pong"
    writer.close()


@pytest.fixture(scope="module")
async def strict_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    config = TEST_CONFIG + "\n[sessions]\nkeepalive_s = 1.5\nmax_sessions = 1\n"
    async with ServerProcess(Path(tmp_path_factory.mktemp("strict")), config) as process:
        yield process


async def test_silent_satellite_is_closed_after_the_keepalive(strict_server: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection(strict_server.host, strict_server.port)
    writer.write(frame("run-pipeline", RUN_PIPELINE))
    assert (await receive(reader))[0] == "locara-session"
    async with asyncio.timeout(10):
        kind, error, _ = await receive(reader)
        assert kind == "error" and error["code"] == "timeout"
        assert await reader.read() == b""
    writer.close()


async def test_sessions_over_the_limit_are_refused(strict_server: ServerProcess) -> None:
    first_reader, first = await asyncio.open_connection(strict_server.host, strict_server.port)
    first.write(frame("run-pipeline", RUN_PIPELINE))
    assert (await receive(first_reader))[0] == "locara-session"
    reader, writer = await asyncio.open_connection(strict_server.host, strict_server.port)
    # Another satellite: the same one again would take its session back.
    another = {**RUN_PIPELINE, "locara": {**RUN_PIPELINE["locara"], "name": "raw-other"}}
    writer.write(frame("run-pipeline", another))
    kind, error, _ = await receive(reader)
    assert kind == "error" and error["code"] == "busy" and "1 sessions" in error["text"]
    first.write(frame("audio-stop"))
    await first.drain()
    assert await first_reader.read() == b""
    await asyncio.sleep(0.2)
    writer.write(frame("run-pipeline", RUN_PIPELINE))
    assert (await receive(reader))[0] == "locara-session"
    writer.close()
    first.close()
