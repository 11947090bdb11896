"""Zeroconf discovery, clean shutdown on signals, and the unix and stdio transports."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wyoming.client import AsyncClient
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Describe, Info
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.zeroconf_advertiser import SERVICE_TYPE, instance_name

from .support.servers import TEST_CONFIG


class Browser:
    """A real zeroconf browser on loopback that records what it sees."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[tuple[str, ServiceStateChange]] = asyncio.Queue()
        self.zeroconf = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        self.changes.put_nowait((name, state_change))

    async def wait_for(self, name: str, state: ServiceStateChange, timeout_s: float = 20) -> None:
        async with asyncio.timeout(timeout_s):
            while (await self.changes.get()) != (name, state):
                pass


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    found = Browser()
    service_browser = AsyncServiceBrowser(
        found.zeroconf.zeroconf, SERVICE_TYPE, handlers=[found._on_change]
    )
    yield found
    await service_browser.async_cancel()
    await found.zeroconf.async_close()


@pytest.mark.models
async def test_zeroconf_browser_finds_the_server(
    server: ServerProcess, zeroconf_name: str, browser: Browser
) -> None:
    record = f"{zeroconf_name}.{SERVICE_TYPE}"
    await browser.wait_for(record, ServiceStateChange.Added)
    info = await browser.zeroconf.async_get_service_info(SERVICE_TYPE, record, timeout=5000)
    assert info is not None
    assert info.port == server.port
    assert info.properties[b"server"] == b"locara"
    assert info.parsed_addresses()


def test_instance_names_are_stable_and_prefixed() -> None:
    assert instance_name("Kitchen Box") == "locara-kitchen-box"
    assert instance_name("locara-attic") == "locara-attic"
    assert instance_name(None) == instance_name(None)
    assert instance_name(None).startswith("locara-")


@pytest.mark.models
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_withdraws_zeroconf_and_closes_connections(
    tmp_path: Path, browser: Browser, signum: int
) -> None:
    name = f"locara-stop-{uuid.uuid4().hex[:6]}"
    process = ServerProcess(tmp_path, TEST_CONFIG, extra_args=["--zeroconf", name])
    await process.start()
    record = f"{name}.{SERVICE_TYPE}"
    await browser.wait_for(record, ServiceStateChange.Added)
    reader, writer = await asyncio.open_connection(process.host, process.port)

    assert await process.stop(signum) == 0
    await browser.wait_for(record, ServiceStateChange.Removed)
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    assert any("Stopped" in line for line in process.log)


@pytest.mark.models
async def test_unix_socket_transport(tmp_path: Path) -> None:
    socket_path = tmp_path / "locara.sock"
    process = ServerProcess(tmp_path, TEST_CONFIG, ["--no-zeroconf"], uri=f"unix://{socket_path}")
    await process.start()
    try:
        async with AsyncClient.from_uri(f"unix://{socket_path}") as client:
            await client.write_event(Describe().event())
            event = await client.read_event()
        assert event is not None and Info.from_event(event).asr
    finally:
        assert await process.stop() == 0
    assert not socket_path.exists()


@pytest.mark.models
async def test_stdio_transport(tmp_path: Path) -> None:
    config = tmp_path / "locara.toml"
    config.write_text(TEST_CONFIG)
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locara_wyoming", "serve", "--uri", "stdio://",
        "--config", str(config), "--data-dir", str(tmp_path / "data"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    writer = server.stdin
    await async_write_event(Describe().event(), writer)
    async with asyncio.timeout(300):
        event = await async_read_event(server.stdout)
    assert event is not None and Info.from_event(event).tts
    writer.close()
    async with asyncio.timeout(30):
        assert await server.wait() == 0
