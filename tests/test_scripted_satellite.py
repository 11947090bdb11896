"""The benches' scripted room never waits forever: a session lost while it speaks, or
at any other moment, is an error its script can count, and hanging up says why."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.scripted import ScriptedSatellite
from locara_wyoming.client.session import SessionFailedError

from .support.speech import Speech

pytestmark = pytest.mark.models


async def test_a_room_whose_server_goes_away_fails_instead_of_waiting(
    tmp_path: Path, speech: Speech
) -> None:
    server = ServerProcess(tmp_path, "")
    await server.start()
    room = ScriptedSatellite(server.uri, "lost-room")
    try:
        await room.start()
        assert not room.ended
    finally:
        await server.stop()  # with the session open
    # Nothing takes the microphone's audio any more; it used to wait for that forever.
    async with asyncio.timeout(30):
        with pytest.raises(SessionFailedError, match="the session ended while speaking"):
            await room.say(speech.at_16k("Is anyone there?"))
    assert room.ended
    with pytest.raises(SessionFailedError, match="closed the connection"):
        await room.stop()
