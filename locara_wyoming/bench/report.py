"""What every benchmark reports the same way: percentiles, memory, CPU, the machine."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import psutil


def summary(values: list[float], digits: int = 1) -> dict[str, float]:
    """p50, p90, min and max of the measurements (empty when there are none)."""
    if not values:
        return {}
    return {
        "p50": round(float(np.percentile(values, 50)), digits),
        "p90": round(float(np.percentile(values, 90)), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def rss_mb(pid: int) -> float:
    return round(float(psutil.Process(pid).memory_info().rss) / 2**20, 1)


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) the process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def publish(results: dict[str, Any], json_path: Path | None) -> None:
    """Print the results as JSON, and write them to `json_path` when given."""
    text = json.dumps(results, indent=2)
    print(text)
    if json_path is not None:
        json_path.write_text(text + "\n", encoding="utf-8")
