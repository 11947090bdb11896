"""Where an engine runs: in a worker thread of the server, or in an engine process."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from ...engines.engine import Engine, FrameOutput, Persona

T = TypeVar("T")


class EngineFailedError(Exception):
    """The engine (or its helper process) failed; its sessions cannot go on as they were."""


class EngineRunner(ABC):
    sample_rate: int
    frame_samples: int
    slots: int

    @abstractmethod
    async def start(self) -> None:
        """Load the model (seconds to minutes) and warm it."""

    @abstractmethod
    async def reset(self, slot: int, persona: Persona) -> None: ...

    @abstractmethod
    async def step(self, frames: dict[int, np.ndarray]) -> tuple[dict[int, FrameOutput], float]:
        """Each slot's output, and the model's own compute time in ms."""

    @abstractmethod
    async def recover(self) -> None:
        """Make the engine usable again after a failed call."""

    @abstractmethod
    async def close(self) -> None: ...


class ThreadRunner(EngineRunner):
    """The engine in one dedicated thread of the server (`moshi-…` on PyTorch)."""

    def __init__(self, load: Callable[[], Engine]) -> None:
        self._load = load
        self._engine: Engine | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")

    async def _run(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function)

    async def start(self) -> None:
        self._engine = engine = await self._run(self._load)
        self.sample_rate, self.frame_samples = engine.sample_rate, engine.frame_samples
        self.slots = engine.slots

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise EngineFailedError("the model is not loaded")
        return self._engine

    async def reset(self, slot: int, persona: Persona) -> None:
        engine = self.engine
        await self._run(lambda: engine.reset(slot, persona))

    async def step(self, frames: dict[int, np.ndarray]) -> tuple[dict[int, FrameOutput], float]:
        engine = self.engine

        def timed() -> tuple[dict[int, FrameOutput], float]:
            started = time.perf_counter()
            outputs = engine.step(frames)
            return outputs, 1000 * (time.perf_counter() - started)

        return await self._run(timed)

    async def recover(self) -> None:
        """A call that raised leaves the loaded model usable: the slots are reset next."""

    async def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
