"""End-to-end Moshi sessions over TCP on tiny random-weight models: one model in the
server, one in a helper process; batching, the session cap, helper restarts, and the
clear failures of missing weights and a wrong PersonaPlex environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from wyoming.client import AsyncClient
from wyoming.event import Event

from locara_wyoming.bench.server_process import ServerProcess, ServerStartError
from locara_wyoming.client.frame_stream import FrameStream, SessionRefusedError, request_session
from locara_wyoming.engines.tiny_moshi import make_tiny_moshi
from locara_wyoming.protocol.session import SessionRequest

pytestmark = pytest.mark.models

FRAME_BYTES = 1920 * 2
MLX_PYTHON = Path(__file__).parent.parent / ".venv-mlx" / "bin" / "python"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_moshi(tmp_path_factory.mktemp("tiny-moshi"))


@pytest.fixture(scope="module")
def tiny_mlx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny moshi_mlx model, built in moshi_mlx's own environment."""
    if not MLX_PYTHON.exists():
        pytest.fail(f"{MLX_PYTHON} is missing: scripts/setup.sh mlx (the test set-up makes it)")
    model = tmp_path_factory.mktemp("tiny-mlx")
    build = "import sys, pathlib; from locara_wyoming.engines.tiny_mlx import make_tiny_mlx_moshi; "
    build += "make_tiny_mlx_moshi(pathlib.Path(sys.argv[1]))"
    subprocess.run([str(MLX_PYTHON), "-c", build, str(model)], check=True, timeout=120)
    return model


def moshi_config(model: Path, extra: str = "") -> str:
    return f"""
[sessions]
default_backend = "moshi-tiny"

[[models]]
id = "moshi-tiny"
path = "{model}"
threads = 1
max_sessions = 2

[[models]]
id = "moshi-helper"
path = "{model}"
threads = 1
python = "{sys.executable}"

[[rooms]]
satellite = "helper-room"
backend = "moshi-helper"
{extra}
"""


@pytest.fixture(scope="module")
async def moshi_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_mlx_model: Path
) -> AsyncIterator[ServerProcess]:
    mlx = f"""
[[models]]
id = "moshi-mlx-tiny"
path = "{tiny_mlx_model}"
python = "{MLX_PYTHON}"

[[rooms]]
satellite = "mlx-room"
backend = "moshi-mlx-tiny"
"""
    config = moshi_config(tiny_model, mlx)
    async with ServerProcess(tmp_path_factory.mktemp("moshi-server"), config) as server:
        yield server


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(24000 * seconds)) * 0.05).astype(np.float32)


async def _status(server: ServerProcess) -> dict[str, Any]:
    async with AsyncClient.from_uri(server.uri) as client:
        await client.write_event(Event("locara-status"))
        answer = await client.read_event()
        assert answer is not None
        return answer.data


async def test_session_streams_80ms_frames_and_text(moshi_server: ServerProcess) -> None:
    record = await FrameStream(moshi_server.uri, "kitchen").run(_noise(3.2))
    assert record.started.backend == "moshi-tiny"
    assert (record.started.input.rate, record.started.frame_ms) == (24000, 80.0)
    assert record.audio_formats == {(24000, 2, 1)}
    # Every chunk is one 80 ms frame, and replies carry most of the 40 frames sent
    # (random weights write text nearly every frame, so replies rarely pause).
    assert set(record.chunk_sizes) == {FRAME_BYTES}
    assert 30 <= record.chunk_sizes[FRAME_BYTES] <= 40
    assert record.texts and record.replies and not record.errors


async def test_two_sessions_share_batches_and_a_third_is_refused(
    moshi_server: ServerProcess,
) -> None:
    before = (await _status(moshi_server))["backends"]["moshi-tiny"]["steps"]
    streams = [FrameStream(moshi_server.uri, f"room-{i}").run(_noise(4.0, i)) for i in range(2)]
    running = [asyncio.create_task(stream) for stream in streams]
    await asyncio.sleep(1.0)
    async with AsyncClient.from_uri(moshi_server.uri) as client:
        with pytest.raises(SessionRefusedError) as refused:
            await request_session(client, SessionRequest("room-3"))
    assert refused.value.code == "busy"
    assert "moshi-tiny serves at most 2 sessions at once" in str(refused.value)
    records = await asyncio.gather(*running)
    for record in records:
        assert record.chunk_sizes[FRAME_BYTES] >= 35 and not record.errors
    status = (await _status(moshi_server))["backends"]["moshi-tiny"]
    # 2 x 50 frames took far fewer than 100 steps: the rooms shared them.
    assert status["steps"] - before < 75
    assert status["sessions"] == 0
    # The slots are free again.
    again = await FrameStream(moshi_server.uri, "room-3").run(_noise(1.0))
    assert again.chunk_sizes[FRAME_BYTES] > 0


def _helper_pid(server: ServerProcess, engine: str = "moshi") -> int:
    for child in psutil.Process(server.pid).children(recursive=True):
        if f"locara_wyoming.engines --engine {engine}" in " ".join(child.cmdline()):
            return child.pid
    raise AssertionError(f"no {engine} helper process")


async def test_moshi_mlx_helper_serves_sessions_without_a_warm_up_each(
    moshi_server: ServerProcess,
) -> None:
    helper = _helper_pid(moshi_server, "mlx")
    for _ in range(2):  # the same helper, started once with the server, serves both
        # A tail of 2 s: in a CI run 11 of the 25 frames were still on their way 0.5 s
        # after the last one went out.
        record = await FrameStream(moshi_server.uri, "mlx-room").run(_noise(2.0), tail_s=2.0)
        assert record.started.backend == "moshi-mlx-tiny"
        assert set(record.chunk_sizes) == {FRAME_BYTES} and record.texts and not record.errors
        timings = (await _status(moshi_server))["backends"]["moshi-mlx-tiny"]
        assert record.chunk_sizes[FRAME_BYTES] >= 20, timings
    assert _helper_pid(moshi_server, "mlx") == helper


async def test_helper_process_serves_and_comes_back_after_a_crash(
    moshi_server: ServerProcess,
) -> None:
    first = _helper_pid(moshi_server)
    record = await FrameStream(moshi_server.uri, "helper-room").run(_noise(2.0))
    assert record.started.backend == "moshi-helper"
    assert set(record.chunk_sizes) == {FRAME_BYTES} and record.texts and not record.errors

    stream = asyncio.create_task(FrameStream(moshi_server.uri, "helper-room").run(_noise(8.0)))
    await asyncio.sleep(1.5)
    os.kill(first, signal.SIGKILL)
    record = await stream
    # The session is told, goes on, and its audio flows again from a new helper.
    assert any(error.startswith("model-failed:") for error in record.errors)
    assert _helper_pid(moshi_server) != first
    # A second of audio at least (12.5 frames a second) once the new helper has loaded.
    assert record.chunks_after_error >= 12
    assert any("model failed" in line and "helper" in line for line in moshi_server.log)


async def test_missing_weights_stop_the_start_with_a_clear_message(tmp_path: Path) -> None:
    config = moshi_config(tmp_path / "no-such-model")
    server = ServerProcess(tmp_path, config)
    with pytest.raises(ServerStartError):
        await server.start()
    assert server.process is not None and server.process.returncode == 3
    log = "\n".join(server.log)
    assert "moshi-helper: no weights at path" in log
    assert "locara-wyoming models fetch moshi-helper" in log


async def test_personaplex_in_kyutais_environment_is_a_clear_error(
    tmp_path: Path, tiny_model: Path
) -> None:
    config = f"""
[sessions]
default_backend = "personaplex-tiny"

[[models]]
id = "personaplex-tiny"
path = "{tiny_model}"
"""
    server = ServerProcess(tmp_path, config)
    with pytest.raises(ServerStartError):
        await server.start()
    log = "\n".join(server.log)
    assert "is Kyutai's, not PersonaPlex's" in log


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "locara_wyoming", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_models_lists_weights_and_fetch_says_what_went_wrong(
    tmp_path: Path, tiny_model: Path
) -> None:
    config = tmp_path / "locara.toml"
    config.write_text(moshi_config(tiny_model))
    hub = {"HF_HOME": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    listing = _cli("models", "list", "--config", str(config), env=hub)
    assert listing.returncode == 0, listing.stderr
    lines = {
        line[2:].split()[0]: line
        for line in listing.stdout.splitlines()
        if "repo" in line or "path" in line
    }
    assert lines["moshi-tiny"].startswith("*") and f"here: {tiny_model}" in lines["moshi-tiny"]
    assert "kyutai/moshiko-pytorch-bf16" in lines["moshi-moshiko"]
    assert lines["moshi-moshiko"].endswith("missing")

    local = _cli("models", "fetch", "moshi-tiny", "--config", str(config), env=hub)
    assert local.returncode == 2 and "nothing to fetch" in local.stderr
    offline = _cli("models", "fetch", "moshi-moshiko", env=hub)
    assert offline.returncode == 3
    assert "cannot fetch kyutai/moshiko-pytorch-bf16" in offline.stderr
    unknown = _cli("models", "fetch", "moshi-nobody", env=hub)
    assert unknown.returncode == 2 and "has no [[models]] entry" in unknown.stderr


def test_bench_moshi_tiny_reports_frame_times(tmp_path: Path) -> None:
    results_path = tmp_path / "moshi.json"
    bench = _cli(
        "bench", "moshi", "--tiny", "--sessions", "1,2", "--seconds", "2", "--json",
        str(results_path),
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    results = json.loads(results_path.read_text())
    assert [run["sessions"] for run in results["runs"]] == [1, 2]
    for run in results["runs"]:
        assert 0 < run["frame_ms"]["p50"] <= run["frame_ms"]["p90"]
        assert run["overhead_ms"]["p90"] > 0 and run["errors"] == 0
        assert run["frames_received"] >= run["frames_sent"] - 2 * run["sessions"]
    assert results["runs"][1]["batch_mean"] > 1.5
    refused = _cli("bench", "moshi", "--sessions", "0")
    assert refused.returncode == 2 and "--sessions 0 must be at least 1" in refused.stderr
