"""What one client cannot take from the others: a control subscriber that stops reading
is disconnected, not kept without its pushes. A server of its own, whose stall limit
is long enough that only the push queue can close the subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from wyoming.event import Event, async_write_event

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.control.hub import MAX_QUEUED_PUSHES

from .support.control_client import control
from .support.raw_wyoming import Connection, next_event

pytestmark = pytest.mark.models

CONFIG = """
[limits]
stalled_client_s = 300
"""


@pytest.fixture(scope="module")
async def limits_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("limits"), CONFIG) as server:
        yield server


def token_of(server: ServerProcess) -> str:
    return (server.workdir / "data" / "token").read_text().strip()


@contextlib.asynccontextmanager
async def small_window_connection(server: ServerProcess) -> AsyncIterator[Connection]:
    """A connection whose receive buffer is 4 KiB (set before connecting, so the window
    stays small): once it stops reading, the server's writes to it back up soon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_to_the_end(reader: asyncio.StreamReader) -> None:
    """Read what the server sent until it closed the connection."""
    async with asyncio.timeout(30):
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(1 << 16):
                pass


async def test_a_subscriber_that_stops_reading_is_disconnected(
    limits_server: ServerProcess,
) -> None:
    """Its pushes back up behind its full socket until `MAX_QUEUED_PUSHES` wait; it is
    then disconnected (not left connected without pushes, as it once was), and a new
    subscription gets the whole state. Settings changes make the pushes: 30 of 200 KB
    first, to fill the socket's buffers (at most 4 MB on Linux), then small ones."""
    server = limits_server
    large = [f"satellite-{number:04d}-{'x' * 60}" for number in range(2500)]
    behind = f"fell {MAX_QUEUED_PUSHES} pushes behind; closing it"
    async with small_window_connection(server) as (stuck, writer):
        subscribe = {"token": token_of(server), "id": "1", "client": "stuck"}
        await async_write_event(Event("locara-control", subscribe), writer)
        state = await next_event(stuck)
        assert state is not None and state.type == "locara-control-state", state
        async with control(server.host, server.port, token_of(server)) as hub:
            for change in range(30 + 2 * MAX_QUEUED_PUSHES):  # it stops reading
                muted = large if change < 30 else [f"satellite-{change}"]
                done = await hub.request("locara-settings", settings={"muted": muted})
                assert done.type == "locara-settings-done", done.data
                if server.log.matching(behind):
                    break
            assert server.log.matching(behind), f"not disconnected after {change + 1} pushes"
            await read_to_the_end(stuck)
            assert len(server.log.matching("Control connection stuck at")) == 2  # and no more

    async with control(server.host, server.port, token_of(server)) as hub:
        assert hub.state["settings"]["muted"] == muted
    assert not server.log.matching("Traceback")
