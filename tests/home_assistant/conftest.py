"""Fixtures for Home Assistant's tests against a real Locara server.

These tests run in .venv-ha, on Home Assistant's own Python, with
pytest-homeassistant-custom-component (phcc). The server is not imported: it runs as
users run it, `.venv/bin/locara-wyoming serve`, in a process of its own with its real
embedded models, and Home Assistant reaches it over TCP on 127.0.0.1 (the only address
phcc lets a test connect to). Zeroconf stays on loopback too.

Starting a server costs about 20 seconds, so each test module shares one (`locara_server`);
a test may stop it (server-down tests), and the next test that asks for it gets it
running again. A module changes the server's configuration by overriding the
`locara_config_extra` fixture; `locara_server_factory` starts further servers.

The server is followed through a log file, not a pipe: phcc fails a test that leaves a
thread behind, and reading a pipe needs one.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_COMMAND = REPO / ".venv" / "bin" / "locara-wyoming"
READY_MARK = "Ready:"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
HOST = "127.0.0.1"

# HA imports `custom_components` from its config dir, which in phcc is its own
# testing_config with a `custom_components` package that would hide ours; importing the
# repository's package first makes it the one HA finds (`enable_custom_integrations`).
if (REPO / "custom_components").is_dir():
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    importlib.import_module("custom_components")

# Added to every server's configuration unless a module overrides `locara_config_extra`:
# a deterministic LLM, so that answers do not change from run to run.
DEFAULT_CONFIG_EXTRA = """
[llm]
temperature = 0.0
"""


# phcc replaces socket.socket before each test (see `locara_server`); module fixtures
# pick ports before a test's `socket_enabled` runs, with the class as it was at import.
_SOCKET = socket.socket


def free_port(host: str = HOST) -> int:
    with _SOCKET(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


class ServerStartError(RuntimeError):
    pass


class LocaraServer:
    """A real `locara-wyoming serve` process on 127.0.0.1 with zeroconf on loopback.

    `extra_toml` is appended to the `[server]` table this class writes; it must not
    contain a `[server]` table of its own.
    """

    def __init__(self, workdir: Path, extra_toml: str = DEFAULT_CONFIG_EXTRA) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = free_port()
        self.zeroconf_name = f"locara-test-{uuid.uuid4().hex[:8]}"
        self.data_dir = workdir / "data"
        self.config_path = workdir / "locara.toml"
        self.log_path = workdir / "server.log"
        self.config_path.write_text(
            f"""[server]
uri = {_toml_string(f"tcp://{self.host}:{self.port}")}
zeroconf = true
zeroconf_name = {_toml_string(self.zeroconf_name)}
zeroconf_interfaces = ["127.0.0.1"]
data_dir = {_toml_string(str(self.data_dir))}
"""
            + extra_toml,
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._run_log_offset = 0  # where the current run's lines begin in the log file

    @property
    def uri(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def token(self) -> str | None:
        """The text of `<data_dir>/token`, or None when the server keeps no such file."""
        path = self.data_dir / "token"
        return path.read_text(encoding="utf-8").strip() if path.is_file() else None

    @property
    def log(self) -> list[str]:
        """Every line the server has logged so far, over all its runs."""
        return self._read_log().splitlines()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _read_log(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log_file:
            log_file.seek(offset)
            return log_file.read().decode("utf-8", errors="replace")

    def _launch(self) -> None:
        if self.running:
            raise RuntimeError(f"the server on {self.uri} is already running")
        if not SERVER_COMMAND.exists():
            raise ServerStartError(
                f"{SERVER_COMMAND} is missing: run `scripts/setup.sh test` (or `make test`)"
            )
        self._run_log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [str(SERVER_COMMAND), "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

    def _ready(self, started: float, timeout_s: float) -> bool:
        """True once this run logged its ready line; raises if it died or took too long."""
        assert self.process is not None
        run_log = self._read_log(self._run_log_offset)
        if READY_MARK in run_log:
            return True
        if self.process.poll() is not None:
            raise ServerStartError(
                f"the server exited with code {self.process.returncode} before it was "
                f"ready; its log:\n{self._tail(run_log)}"
            )
        if time.monotonic() - started > timeout_s:
            self.stop()
            raise ServerStartError(
                f"the server logged no {READY_MARK!r} line within {timeout_s:.0f} s; "
                f"its log:\n{self._tail(self._read_log(self._run_log_offset))}"
            )
        return False

    @staticmethod
    def _tail(text: str, lines: int = 40) -> str:
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and block until it is ready (for fixtures)."""
        self._launch()
        started = time.monotonic()
        while not self._ready(started, timeout_s):
            time.sleep(0.2)

    async def async_start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and wait until it is ready without blocking the event loop."""
        self._launch()
        started = time.monotonic()
        while True:  # polls the log file: the process gives no event to wait on
            if self._ready(started, timeout_s):
                return
            await asyncio.sleep(0.2)

    def _signal(self) -> bool:
        """Send SIGTERM; False when there is no process left to stop."""
        if self.process is None:
            return False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return True

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; the exit code (None: never started)."""
        if not self._signal():
            return None
        assert self.process is not None
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    async def async_stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """`stop()` without blocking the event loop."""
        if not self._signal():
            return None
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while True:  # polls: asyncio's child watcher is not ours to use in HA's loop
            if self.process.poll() is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def restart(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.stop()
        self.start(timeout_s)

    async def async_restart(self, timeout_s: float = START_TIMEOUT_S) -> None:
        await self.async_stop()
        await self.async_start(timeout_s)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the repository's integrations (custom_components/)."""


@pytest.fixture(scope="module")
def locara_config_extra() -> str:
    """TOML added to the module's server configuration; override it in a module."""
    return DEFAULT_CONFIG_EXTRA


@pytest.fixture(scope="module")
def locara_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], LocaraServer]]:
    """Start further real servers (ready when returned); all are stopped after the module."""
    servers: list[LocaraServer] = []

    def start(extra_toml: str = DEFAULT_CONFIG_EXTRA) -> LocaraServer:
        server = LocaraServer(tmp_path_factory.mktemp("locara"), extra_toml)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def locara_module_server(
    locara_server_factory: Callable[[str], LocaraServer], locara_config_extra: str
) -> LocaraServer:
    return locara_server_factory(locara_config_extra)


@pytest.fixture
def locara_server(locara_module_server: LocaraServer, socket_enabled: None) -> LocaraServer:
    """The module's real server, running (started again if an earlier test stopped it).

    phcc blocks every internet socket in a test; `socket_enabled` lifts that for tests
    that reach the server, and phcc still lets them connect to 127.0.0.1 only.
    """
    if not locara_module_server.running:
        locara_module_server.start()
    return locara_module_server
