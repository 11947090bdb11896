"""A scripted satellite in a room for the length of a block."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.scripted import ScriptedSatellite

from .enrolment import enrol, satellites_command


@contextlib.asynccontextmanager
async def satellite(
    server: ServerProcess, name: str, enrolled: bool = False, **options: object
) -> AsyncIterator[ScriptedSatellite]:
    """`enrolled`: enrolled with the command for the block (home control, announcements
    and `locara-listen` reach only enrolled satellites), and removed after it, so that
    other tests on the same server may use the name unenrolled (in open mode)."""
    if enrolled:
        options["credential"] = await enrol(server, name)
    try:
        room = ScriptedSatellite(server.uri, name, **options)  # type: ignore[arg-type]
        await room.start()
        try:
            yield room
        finally:
            await room.stop()
    finally:
        if enrolled:
            await satellites_command(server, "remove", name)
