"""An engine in an engine process of its own environment (moshi_mlx, PersonaPlex).

The helper is started once, when the server starts, and serves every session
after that: no warm-up per session. If it dies, the next request fails with
EngineFailedError (the backend tells the sessions) and `restart` starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio.subprocess import PIPE, Process

import numpy as np
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event

from ...engines import messages
from ...engines.engine import FrameOutput, Persona
from .runner import EngineFailedError, EngineRunner

_LOGGER = logging.getLogger(__name__)

STOP_GRACE_S = 5.0


class EngineProcessRunner(EngineRunner):
    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.command = command
        self.starts = 0
        self._process: Process | None = None
        self._lock = asyncio.Lock()
        self._log_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        self.starts += 1
        _LOGGER.info("%s: starting helper: %s", self.name, " ".join(self.command))
        self._process = process = await asyncio.create_subprocess_exec(
            *self.command, stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        self._log_task = asyncio.create_task(self._pass_log(process), name=f"{self.name} log")
        ready = await self._read(process)
        if ready.type != messages.READY:
            raise EngineFailedError(f"{self.name}: helper said {ready.type!r} instead of ready")
        data = ready.data
        self.sample_rate, self.frame_samples = int(data["sample_rate"]), int(data["frame_samples"])
        self.slots = int(data["slots"])
        _LOGGER.info("%s: helper %d ready (%s engine)", self.name, process.pid, data["engine"])

    async def _pass_log(self, process: Process) -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            _LOGGER.info("%s helper: %s", self.name, line.decode(errors="replace").rstrip())

    async def _read(self, process: Process) -> Event:
        assert process.stdout is not None
        try:
            event = await async_read_event(process.stdout)
        except (ConnectionError, OSError, ValueError) as error:
            event, reason = None, str(error)
        else:
            reason = "it exited"
        if event is None:
            code = await process.wait()
            raise EngineFailedError(f"{self.name}: helper failed ({reason}, exit code {code})")
        if Error.is_type(event.type):
            raise EngineFailedError(f"{self.name}: helper failed: {Error.from_event(event).text}")
        return event

    async def _ask(self, request: Event) -> Event:
        async with self._lock:
            process = self._process
            if process is None or process.returncode is not None:
                raise EngineFailedError(f"{self.name}: helper is not running")
            assert process.stdin is not None
            try:
                await async_write_event(request, process.stdin)
            except (ConnectionError, OSError) as error:
                raise EngineFailedError(f"{self.name}: helper gone ({error})") from None
            return await self._read(process)

    async def reset(self, slot: int, persona: Persona) -> None:
        answer = await self._ask(messages.reset_request(slot, persona))
        _LOGGER.debug(
            "%s: slot %d reset, %s prompt tokens", self.name, slot, answer.data.get("prompt_tokens")
        )

    async def step(self, frames: dict[int, np.ndarray]) -> tuple[dict[int, FrameOutput], float]:
        return messages.read_step_answer(await self._ask(messages.step_request(frames)))

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()  # the helper ends at the end of its input
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_task

    async def recover(self) -> None:
        await self.close()
        await self.start()
