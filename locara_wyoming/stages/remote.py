"""Talking to another Wyoming service that a stage delegates to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event

from ..errors import RemoteFailed

CONNECT_TIMEOUT_S = 10.0
REPLY_TIMEOUT_S = 60.0


class RemoteServiceError(RemoteFailed):
    """A remote service (another Wyoming server, an OpenAI-compatible endpoint) was
    unreachable, failed or answered with an error."""


@contextlib.asynccontextmanager
async def wyoming_connection(uri: str) -> AsyncIterator[AsyncClient]:
    client = AsyncClient.from_uri(uri)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await client.connect()
    except (OSError, TimeoutError) as error:
        raise RemoteServiceError(f"cannot reach {uri}: {error or 'timed out'}") from None
    try:
        yield client
    finally:
        await client.disconnect()


async def read_until(client: AsyncClient, wanted: Callable[[str], bool]) -> Event:
    """Read events until one of the wanted type; an `error` or a disconnect raises."""
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        while True:
            event = await client.read_event()
            if event is None:
                raise RemoteServiceError("the remote service closed the connection")
            if wanted(event.type):
                return event
            if Error.is_type(event.type):
                raise RemoteServiceError(
                    f"the remote service failed: {Error.from_event(event).text}"
                )
