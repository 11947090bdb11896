"""Start a real `locara-wyoming serve` process and wait until it is ready.

Benchmarks and tests measure the server as users run it: its own process,
its own models, reached over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

from .log_lines import LogLines

READY_MARK = "Ready:"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ServerStartError(RuntimeError):
    pass


class ServerProcess:
    def __init__(
        self,
        workdir: Path,
        config_toml: str = "",
        extra_args: list[str] | None = None,
        uri: str | None = None,
        open_satellites: bool = True,
    ) -> None:
        """`open_satellites`: admit satellites that are not enrolled (`--open-satellites`),
        as the benchmarks and most tests want; a test of enrolment turns it off."""
        self.workdir = workdir
        self.config_path = workdir / "locara.toml"
        self.config_path.write_text(config_toml, encoding="utf-8")
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.uri = uri or f"tcp://{self.host}:{self.port}"
        self.extra_args = extra_args or ["--no-zeroconf"]
        if open_satellites:
            self.extra_args = [*self.extra_args, "--open-satellites"]
        self.log = LogLines()
        self.process: asyncio.subprocess.Process | None = None
        self._log_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self, timeout_s: float = 300.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "locara_wyoming",
            "serve",
            "--config",
            str(self.config_path),
            "--uri",
            self.uri,
            "--data-dir",
            str(self.workdir / "data"),
            *self.extra_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        ready = asyncio.Event()
        self._log_task = asyncio.create_task(self._follow_log(ready))
        waiter = asyncio.create_task(ready.wait())
        try:
            await asyncio.wait(
                [waiter, asyncio.create_task(self.process.wait())],
                timeout=timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
        if not ready.is_set():
            await self.stop()
            tail = "\n".join(self.log[-20:])
            raise ServerStartError(f"server did not become ready:\n{tail}")

    async def _follow_log(self, ready: asyncio.Event) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            if READY_MARK in self.log.add(raw):
                ready.set()

    async def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        """Signal the server and wait for it to exit; returns its exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signum)
            try:
                await asyncio.wait_for(self.process.wait(), timeout_s)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._log_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_task
        return self.process.returncode if self.process.returncode is not None else -signal.SIGKILL

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
