"""A scripted satellite in a room for the length of a block."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.scripted import ScriptedSatellite


@contextlib.asynccontextmanager
async def satellite(
    server: ServerProcess, name: str, **options: object
) -> AsyncIterator[ScriptedSatellite]:
    room = ScriptedSatellite(server.uri, name, **options)  # type: ignore[arg-type]
    await room.start()
    try:
        yield room
    finally:
        await room.stop()
