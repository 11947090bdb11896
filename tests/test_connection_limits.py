"""What one client cannot take from the others: connections (per address, and the
slots kept for clients that prove who they are), and a control subscriber's pushes. A
server of its own, with small connection limits, 1 s of probation, and a stall limit
long enough that only the push queue can close a subscriber.

Each test's clients connect from addresses of their own in 127.0.0.0/8: on Linux any of
them reaches the server on 127.0.0.1, and the server counts connections by address.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator

import pytest
from wyoming.event import Event

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.control.hub import MAX_QUEUED_PUSHES
from locara_wyoming.protocol.auth import ROLE_CONTROL, SecureTcpClient, token_key

from .support.control_client import control, token_of
from .support.raw_wyoming import (
    Connection,
    expect_alive,
    expect_closed,
    expect_error,
    raw_connection,
)

pytestmark = pytest.mark.models

CONFIG = """
[limits]
max_connections = 8
max_connections_per_address = 3
reserved_connections = 3
probation_s = 1
stalled_client_s = 300
"""
UNPROVEN_SHARE = 5  # max_connections - reserved_connections
PROBATION_S = 1.0


@pytest.fixture(scope="module")
async def limits_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("limits"), CONFIG) as server:
        yield server


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close the connection and wait for the server's side to close: the server frees a
    connection's slot before it closes its side, so the next test finds it free."""
    writer.write_eof()
    await expect_closed(reader)


async def hold(stack: contextlib.AsyncExitStack, server: ServerProcess, source: str) -> Connection:
    """A connection from `source`, served (it answered a ping), hung up when `stack` ends."""
    reader, writer = await stack.enter_async_context(raw_connection(server, source))
    stack.push_async_callback(hang_up, reader, writer)
    await expect_alive(writer, reader)
    return reader, writer


async def test_one_address_holds_at_most_its_share_and_others_are_served(
    limits_server: ServerProcess,
) -> None:
    server = limits_server
    async with contextlib.AsyncExitStack() as stack:
        held = [await hold(stack, server, "127.0.0.2") for _ in range(3)]
        async with raw_connection(server, "127.0.0.2") as (reader, _writer):
            error = await expect_error(reader, "busy")
            assert "127.0.0.2 already holds 3 connections, the most one address may" in error.text
            await expect_closed(reader)
        await hold(stack, server, "127.0.0.3")  # another address is served
        for reader, writer in held:
            await expect_alive(writer, reader)  # and those the first holds stay
    assert server.log.matching("Refusing ('127.0.0.2'")


async def test_beyond_the_unproven_share_a_connection_must_prove_itself_in_time(
    limits_server: ServerProcess,
) -> None:
    """Strangers hold the 5 slots of the unproven share. A connection beyond it is
    served, on probation: one that does not prove itself is closed with `busy` after
    1 s; Home Assistant's, which proves itself with the token, stays. One that is on
    probation when a slot of the share comes free takes that slot and stays."""
    server = limits_server
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        fillers = [await hold(stack, server, f"127.0.1.{n}") for n in range(UNPROVEN_SHARE)]
        async with raw_connection(server, "127.0.2.1") as (reader, writer):
            opened = loop.time()
            await expect_alive(writer, reader)  # served while on probation
            error = await expect_error(reader, "busy")
            waited = loop.time() - opened
            assert "did not authenticate within 1 s" in error.text, error
            await expect_closed(reader)
        assert PROBATION_S * 0.9 < waited < PROBATION_S + 5, waited
        for reader, writer in fillers:
            await expect_alive(writer, reader)  # the share's connections stay

        async with control(server.host, server.port, token_of(server)) as hub:
            await asyncio.sleep(PROBATION_S * 2)  # proven: past its probation, it stays
            assert (await hub.status())["sessions_active"] == 0

        reader, writer = await hold(stack, server, "127.0.2.2")  # on probation: share full
        await hang_up(*fillers.pop())  # a slot of the share comes free
        await asyncio.sleep(PROBATION_S * 2)
        await expect_alive(writer, reader)  # it took that slot
    assert len(server.log.matching("did not authenticate within 1 s; closing")) == 1


class SmallWindowClient(SecureTcpClient):
    """A control client whose receive buffer is 4 KiB (set before connecting, so the
    window stays small): once it stops reading, the server's writes to it back up soon."""

    async def connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
        self._reader, self._writer = await asyncio.open_connection(sock=sock)


async def read_to_the_end(reader: asyncio.StreamReader) -> None:
    """Read what the server sent until it closed the connection."""
    async with asyncio.timeout(30):
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):
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
    async with SmallWindowClient(server.host, server.port) as client:
        await client.authenticate(ROLE_CONTROL, "stuck", token_key(token_of(server)))
        await client.write_event(Event("locara-control", {"id": "1", "client": "stuck"}))
        state = await client.read_event()
        assert state is not None and state.type == "locara-control-state", state
        assert client._reader is not None
        stuck = client._reader
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
