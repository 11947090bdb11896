"""Run a measurement against a fresh server process and add what every benchmark reports."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .report import machine, progress, rss_mb
from .server_process import ServerProcess

Measurement = Callable[[ServerProcess], Awaitable[dict[str, Any]]]


def read_config(config_path: Path | None) -> str:
    return config_path.read_text(encoding="utf-8") if config_path else ""


async def measure_server(config_text: str, measurement: Measurement) -> dict[str, Any]:
    """Start a server on `config_text`, run `measurement` on it, stop it.

    The results gain the start-up time, the server's resident memory after warm-up and
    after the measurement, and the machine.
    """
    with tempfile.TemporaryDirectory(prefix="locara-bench-") as workdir:
        # The benchmarks' rooms are not enrolled (ServerProcess admits them): they
        # measure the voice path, not TLS.
        server = ServerProcess(Path(workdir), config_text, ["--no-zeroconf"])
        progress("Starting the server (loading and warming every model)…")
        started = time.perf_counter()
        await server.start()
        startup_s = time.perf_counter() - started
        try:
            rss_ready = rss_mb(server.pid)
            progress(f"  ready in {startup_s:.1f} s, {rss_ready} MB resident")
            results = await measurement(server)
            results["rss_mb"] = {"after_warm_up": rss_ready, "after_bench": rss_mb(server.pid)}
        finally:
            await server.stop()
    results["startup_s"] = round(startup_s, 1)
    results["machine"] = machine()
    return results
