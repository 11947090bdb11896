"""Serve several rooms from one loaded model: their frames share batch steps.

Each session owns a slot. A step runs as soon as every open slot has a frame, or
when the oldest waiting frame has waited `batch_wait_s`; the slots without a frame
sit that step out. A slot whose frames pile up (the model is slower than real
time) loses its oldest ones, so latency and memory stay bounded. When the model
fails, its sessions are told, their conversations start again, and serving goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...engines.engine import FrameOutput, Persona
from ..base import BackendFullError
from .frame_stats import FrameStats
from .runner import EngineRunner

_LOGGER = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 25
"""Two seconds of a room's audio waiting for the model; older frames are dropped."""
RETRY_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class SlotUser:
    """What the batcher needs of a session: where its output goes, how it is told of a failure."""

    persona: Persona
    deliver: Callable[[FrameOutput], None]
    fail: Callable[[str], None]
    frames: deque[tuple[np.ndarray, float]] = field(default_factory=deque)
    dropped: int = 0


class FrameBatcher:
    def __init__(self, name: str, runner: EngineRunner, max_sessions: int, batch_wait_s: float):
        self.name = name
        self.runner = runner
        self.max_sessions = max_sessions
        self.batch_wait_s = batch_wait_s
        self.stats = FrameStats()
        self._users: dict[int, SlotUser] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self.recovering = False
        """The model failed and is being brought back."""

    @property
    def sessions(self) -> int:
        return len(self._users)

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name=f"{self.name} frames")

    async def attach(self, user: SlotUser) -> int:
        free = [slot for slot in range(self.max_sessions) if slot not in self._users]
        if not free:
            raise BackendFullError(
                f"{self.name} serves at most {self.max_sessions} sessions at once"
            )
        slot = free[0]
        self._users[slot] = user
        try:
            await self.runner.reset(slot, user.persona)
        except BaseException:
            del self._users[slot]
            raise
        return slot

    def detach(self, slot: int) -> None:
        self._users.pop(slot, None)

    def submit(self, slot: int, frame: np.ndarray) -> None:
        user = self._users.get(slot)
        if user is None:
            return
        if len(user.frames) >= MAX_QUEUED_FRAMES:
            user.frames.popleft()
            user.dropped += 1
            if user.dropped == 1 or user.dropped % 100 == 0:
                _LOGGER.warning("%s: slot %d: model behind real time, %d frames dropped",
                                self.name, slot, user.dropped)  # fmt: skip
        user.frames.append((frame, time.perf_counter()))
        self._wake.set()

    def _ready(self) -> dict[int, SlotUser]:
        return {slot: user for slot, user in self._users.items() if user.frames}

    async def _serve(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while ready := self._ready():
                if len(ready) < len(self._users):
                    oldest = min(user.frames[0][1] for user in ready.values())
                    left = self.batch_wait_s - (time.perf_counter() - oldest)
                    if left > 0:
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), left)
                        continue
                await self._step(ready)

    async def _step(self, ready: dict[int, SlotUser]) -> None:
        taken = {slot: user.frames.popleft() for slot, user in ready.items()}
        started = time.perf_counter()
        try:
            outputs, compute_ms = await self.runner.step({s: f for s, (f, _) in taken.items()})
        except Exception as error:
            await self._recover(error)
            return
        self._failures = 0
        for slot, output in outputs.items():
            user = self._users.get(slot)
            if user is not None:  # the session may have closed during the step
                user.deliver(output)
        overhead_ms = 1000 * (time.perf_counter() - started) - compute_ms
        waits = [1000 * (started - arrived) for _, arrived in taken.values()]
        self.stats.add(compute_ms, overhead_ms, waits, len(taken))

    async def _recover(self, error: Exception) -> None:
        """Tell every session, bring the model back, and start their conversations again."""
        _LOGGER.error("%s: model failed: %s", self.name, error)
        self.recovering = True
        for user in self._users.values():
            user.frames.clear()
            user.fail(f"the model failed and its conversation starts again: {error}")
        while True:
            delay = RETRY_DELAYS_S[min(self._failures, len(RETRY_DELAYS_S) - 1)]
            self._failures += 1
            try:
                await self.runner.recover()
                for slot, user in list(self._users.items()):
                    await self.runner.reset(slot, user.persona)
            except Exception as again:
                _LOGGER.error("%s: could not bring the model back (%s); retrying in %.0f s",
                              self.name, again, delay)  # fmt: skip
                await asyncio.sleep(delay)
                continue
            _LOGGER.info("%s: model back, %d sessions go on", self.name, len(self._users))
            self.recovering = False
            return

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.runner.close()
