"""Per-frame timings of an end-to-end model, for `locara-status` and `bench moshi`."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

KEPT_STEPS = 5000


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0}
    p50, p90 = np.percentile(values, [50, 90])
    return {"p50": round(float(p50), 2), "p90": round(float(p90), 2)}


class FrameStats:
    def __init__(self) -> None:
        self.steps = 0
        self._compute: deque[float] = deque(maxlen=KEPT_STEPS)
        self._overhead: deque[float] = deque(maxlen=KEPT_STEPS)
        self._wait: deque[float] = deque(maxlen=KEPT_STEPS * 8)
        self._batch: deque[float] = deque(maxlen=KEPT_STEPS)

    def add(self, compute_ms: float, overhead_ms: float, waits_ms: list[float], batch: int) -> None:
        self.steps += 1
        self._compute.append(compute_ms)
        self._overhead.append(overhead_ms)
        self._wait.extend(waits_ms)
        self._batch.append(batch)

    def summary(self, since_step: int = 0) -> dict[str, Any]:
        """`frame_ms`: the model's compute per step; `overhead_ms`: the server's own time
        around it; `wait_ms`: how long a frame waited for its batch; all over the steps
        after `since_step` (of the last KEPT_STEPS)."""
        last = max(0, min(self.steps - since_step, KEPT_STEPS))
        batch = list(self._batch)[len(self._batch) - last :]
        waits = sum(int(b) for b in batch)
        return {
            "steps": self.steps,
            "frame_ms": _percentiles(list(self._compute)[len(self._compute) - last :]),
            "overhead_ms": _percentiles(list(self._overhead)[len(self._overhead) - last :]),
            "wait_ms": _percentiles(list(self._wait)[len(self._wait) - waits :] if waits else []),
            "batch_mean": round(float(np.mean(batch)), 2) if batch else 0.0,
        }
