"""Raw Wyoming connections to a server: bytes and events, and what the answer must be."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event

from locara_wyoming.bench.server_process import ServerProcess

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def raw_connection(server: ServerProcess) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
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
