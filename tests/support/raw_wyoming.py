"""Raw Wyoming connections to a server: bytes and events, and what the answer must be."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event

from locara_wyoming.bench.server_process import ServerProcess

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def raw_connection(
    server: ServerProcess, source: str | None = None
) -> AsyncIterator[Connection]:
    """A connection to `server`, from the address `source` if given (on Linux, any of
    127.0.0.0/8 reaches a server on 127.0.0.1)."""
    local = (source, 0) if source is not None else None
    reader, writer = await asyncio.open_connection(server.host, server.port, local_addr=local)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def next_event(reader: asyncio.StreamReader) -> Event | None:
    async with asyncio.timeout(30):
        return await async_read_event(reader)


async def expect_error(reader: asyncio.StreamReader, code: str) -> Error:
    event = await next_event(reader)
    assert event is not None and Error.is_type(event.type), event
    error = Error.from_event(event)
    assert error.code == code, error
    return error


async def expect_closed(reader: asyncio.StreamReader) -> None:
    async with asyncio.timeout(10):
        assert await reader.read() == b""


async def expect_alive(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
    await async_write_event(Event("ping", {"text": "still there?"}), writer)
    event = await next_event(reader)
    assert event is not None and event.type == "pong" and event.data["text"] == "still there?"


def header(**fields: object) -> bytes:
    return json.dumps(fields).encode() + b"\n"


@contextlib.asynccontextmanager
async def others_served_throughout(
    server: ServerProcess, most_s: float | None = None, every_s: float = 0.5
) -> AsyncIterator[list[float]]:
    """Another client pings every `every_s` while the block runs: every ping must be
    answered, each within `most_s` (`PING_MOST_S`), or the block's exit raises. The
    block gets the pings' waits as they are answered; one unanswered at the exit counts
    with its wait so far."""
    most_s = PING_MOST_S if most_s is None else most_s
    async with raw_connection(server) as (reader, writer):
        waits: list[float] = []
        sent: list[float] = []

        async def keep_pinging() -> None:
            while True:
                sent.append(time.monotonic())
                await expect_alive(writer, reader)
                waits.append(time.monotonic() - sent[-1])
                await asyncio.sleep(every_s)

        pinging = asyncio.create_task(keep_pinging())
        try:
            yield waits
            if pinging.done():
                pinging.result()  # its failure
        finally:
            pinging.cancel()
        if len(sent) > len(waits):
            waits.append(time.monotonic() - sent[-1])
        assert len(waits) >= 2 and max(waits) < most_s, waits


PING_MOST_S = 2.0
"""The bound the fuzzing's witness keeps too (docs/security.md): the server's loop answers
a ping at once unless something holds it, and a held loop is lost audio."""
