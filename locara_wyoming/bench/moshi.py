"""`locara-wyoming bench moshi`: an end-to-end model's time per 80 ms frame with 1, 2
and 4 rooms talking at once, measured inside a real server fed over TCP in real time.

The server reports, per batch step, the model's own compute (`frame_ms`), its own
time around it (`overhead_ms`: queueing to the model's thread or helper, conversion,
handing the output to the sessions) and how long frames waited to share a step
(`wait_ms`, at most `batch_wait_ms`).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.client import AsyncClient
from wyoming.event import Event

from ..client.frame_stream import FrameStream
from ..config import parse_config
from ..protocol.session import STATUS_TYPE
from .harness import measure_server, read_config
from .report import progress, publish
from .server_process import ServerProcess

TINY_MODEL_ID = "moshi-tiny"


def tiny_config(model_dir: Path, sessions: int) -> str:
    return f"""
[sessions]
default_backend = "{TINY_MODEL_ID}"

[[models]]
id = "{TINY_MODEL_ID}"
path = "{model_dir}"
threads = 1
max_sessions = {sessions}
"""


async def _status(uri: str, since_step: int) -> dict[str, Any]:
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Event(STATUS_TYPE, {"since_step": since_step}))
        answer = await client.read_event()
        assert answer is not None
        return dict(answer.data["backends"])


async def _run(server: ServerProcess, model_id: str, rooms: int, seconds: float) -> dict[str, Any]:
    before = (await _status(server.uri, 0))[model_id]["steps"]
    rng = np.random.default_rng(rooms)
    audio = (rng.standard_normal(int(24000 * seconds)) * 0.05).astype(np.float32)
    records = await asyncio.gather(
        *(FrameStream(server.uri, f"bench-room-{i}").run(audio) for i in range(rooms))
    )
    status = (await _status(server.uri, before))[model_id]
    return {
        "sessions": rooms,
        "frame_ms": status["frame_ms"],
        "overhead_ms": status["overhead_ms"],
        "wait_ms": status["wait_ms"],
        "batch_mean": status["batch_mean"],
        "steps": status["steps"] - before,
        "frames_sent": rooms * int(np.ceil(len(audio) / 1920)),
        "frames_received": sum(r.audio_bytes // 3840 for r in records),
        "errors": sum(len(r.errors) for r in records),
    }


async def _measure(
    server: ServerProcess, model_id: str, sessions: list[int], seconds: float
) -> dict[str, Any]:
    runs = []
    for rooms in sessions:
        progress(f"{rooms} session(s), {seconds:.0f} s of audio each…")
        run = await _run(server, model_id, rooms, seconds)
        progress(f"  frame p50 {run['frame_ms']['p50']} ms, p90 {run['frame_ms']['p90']} ms; "
                 f"overhead p90 {run['overhead_ms']['p90']} ms")  # fmt: skip
        runs.append(run)
    return {"model": model_id, "seconds": seconds, "runs": runs}


def run_moshi_bench(
    config_path: Path | None,
    tiny: bool,
    sessions: list[int],
    seconds: float,
    json_path: Path | None,
) -> int:
    problems = [f"--sessions {n} must be at least 1" for n in sessions if n < 1]
    if seconds <= 0:
        problems.append("--seconds must be more than 0")
    if tiny == (config_path is not None):
        problems.append("give either --tiny or --config (a configuration with a moshi backend)")
    if problems:
        for problem in problems:
            print(f"locara-wyoming bench moshi: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="locara-tiny-moshi-") as workdir:
        if tiny:
            from ..engines.tiny_moshi import make_tiny_moshi

            progress("Building a tiny random-weight Moshi…")
            config_text = tiny_config(make_tiny_moshi(Path(workdir)), max(sessions))
        else:
            config_text = read_config(config_path)
        config = parse_config(tomllib.loads(config_text))
        model_id = config.sessions.default_backend
        results = asyncio.run(
            measure_server(config_text, lambda s: _measure(s, model_id, sessions, seconds))
        )
    publish(results, json_path)
    return 0
