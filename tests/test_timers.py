"""Home Assistant's timers in a room, against a real server: the timer events reach the
satellite, a finished timer rings round after round until the user says "stop" (which
never reaches the LLM), timers survive a reconnect, one that finished while the
satellite was away rings when it is back, and nobody's ringing goes on past its limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.scripted import ScriptedSatellite, Seen

from .support.control_client import ControlClient, control, token_of
from .support.enrolment import enrol, satellites_command
from .support.rooms import satellite
from .support.servers import TEST_CONFIG
from .support.speech import Speech

CONFIG = (
    TEST_CONFIG
    + """
[timers]
ring_interval_s = 1
ring_limit_s = 20
missed_ring_s = 600
"""
)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("timers"), CONFIG) as process:
        yield process


def timer(timer_id: str, seconds_left: int, **fields: Any) -> dict[str, Any]:
    return {"id": timer_id, "seconds_left": seconds_left, "language": "en", **fields}


async def tell(hub: ControlClient, satellite: str, change: str, **info: Any) -> bool:
    """Send a timer event as Home Assistant's integration does; whether it was delivered."""
    done = await hub.request("locara-timer", satellite=satellite, change=change, timer=info)
    assert done.type == "locara-timer-done", done
    delivered = done.data["delivered"]
    assert isinstance(delivered, bool)
    return delivered


def of_timer(room: ScriptedSatellite, event_type: str, timer_id: str) -> list[Seen]:
    return [seen for seen in room.seen_of(event_type) if seen.event.data.get("id") == timer_id]


async def timer_event(
    room: ScriptedSatellite, event_type: str, timer_id: str, count: int = 1, timeout_s: float = 30
) -> Seen:
    """The `count`th `event_type` of the timer `timer_id` that the satellite got."""
    async with asyncio.timeout(timeout_s):
        # The scripted satellite keeps what it sees in a list: no event to wait on.
        while len(seen := of_timer(room, event_type, timer_id)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return seen[count - 1]


def announcements(room: ScriptedSatellite) -> list[str]:
    return [
        str(seen.event.data.get("text"))
        for seen in room.seen_of("handled")
        if str(seen.event.data.get("context", {}).get("reply_id", "")).startswith("announce-")
        and not seen.event.data.get("context", {}).get("interrupted")
    ]


async def announced(room: ScriptedSatellite, count: int, timeout_s: float = 30) -> list[str]:
    """The room's first `count` announcements, waiting for them."""
    async with asyncio.timeout(timeout_s):
        while len(said := announcements(room)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return said[:count]


@pytest.mark.models
async def test_a_finished_timer_rings_until_the_user_says_stop(
    server: ServerProcess, speech: Speech
) -> None:
    async with (
        control(server.host, server.port, token_of(server)) as hub,
        satellite(server, "kitchen", area="Kitchen", enrolled=True) as room,
    ):
        assert await tell(hub, "kitchen", "started", **timer("t1", 3, start_seconds=3))
        started = await timer_event(room, "timer-started", "t1")
        assert started.event.data["total_seconds"] == 3
        assert started.event.data["start_seconds"] == 3
        paused = timer("t1", 3, start_seconds=3, active=False)
        assert await tell(hub, "kitchen", "updated", **paused)
        updated = await timer_event(room, "timer-updated", "t1")
        assert updated.event.data == {"id": "t1", "is_active": False, "total_seconds": 3}

        assert await tell(hub, "kitchen", "finished", **timer("t1", 0, start_seconds=3))
        await timer_event(room, "timer-finished", "t1")
        # Round after round: the sound's cue, then the room says which timer it was.
        await timer_event(room, "timer-finished", "t1", count=2)
        assert await announced(room, 2) == ["Your 3 second timer is done."] * 2

        said = await room.say(speech.at_16k("Stop."))
        await timer_event(room, "timer-cancelled", "t1", timeout_s=20)
        heard = await room.wait_for("transcript", said.voiced_end)
        assert "stop" in str(heard.event.data["text"]).lower()
        rounds = len(of_timer(room, "timer-finished", "t1"))
        await asyncio.sleep(4)  # longer than a round: no more ringing
        assert len(of_timer(room, "timer-finished", "t1")) == rounds
        # "Stop" went to nobody: no reply but the ringing's own words followed it.
        replies = [
            seen.event.data["context"]["reply_id"]
            for seen in room.seen_of("handled-start", said.voiced_end)
        ]
        assert all(reply.startswith("announce-") for reply in replies), replies

        # A timer cancelled in Home Assistant leaves the satellite too.
        assert await tell(hub, "kitchen", "started", **timer("t2", 60, start_minutes=1))
        assert await tell(hub, "kitchen", "cancelled", **timer("t2", 0, start_minutes=1))
        await timer_event(room, "timer-cancelled", "t2")


@pytest.mark.models
async def test_stop_ends_an_announcement_and_goes_nowhere_else(
    server: ServerProcess, speech: Speech
) -> None:
    text = " ".join(["The lasagne needs another twenty minutes in the oven."] * 4)
    async with (
        control(server.host, server.port, token_of(server)) as hub,
        satellite(server, "study", enrolled=True) as room,
    ):
        # "Stop" while it plays (on a slow machine, while it is still being made).
        request = asyncio.create_task(hub.request("locara-announce", text=text, satellite="study"))
        start = await room.wait_for("audio-start", 0)
        reply_id = start.event.data["reply_id"]
        # The satellite's echo gate hears the first half second of its first playback as
        # loud echo (docs/protocol.md, EchoGate): speak once it has learnt the room.
        await asyncio.sleep(1.5)
        said = await room.say(speech.at_16k("Stop."))
        flush = await room.wait_for("locara-flush", said.voiced_end, timeout_s=20)
        assert flush.event.data["reply_id"] == reply_id
        done = await request
        assert done.type == "locara-announce-done", done
        reply = room.speaker.replies[reply_id]
        assert reply.flushed_at is not None
        assert reply.played / reply.audio.rate < 10, "the rest of its ~12 s was not played"
        await asyncio.sleep(2)
        assert not [
            seen
            for seen in room.seen_of("handled-start", said.voiced_end)
            if seen.event.data["context"]["reply_id"] != reply_id
        ]


@pytest.mark.models
async def test_timers_survive_a_reconnect_and_one_finished_meanwhile_rings_on_return(
    server: ServerProcess,
) -> None:
    credential = await enrol(server, "hall")
    try:
        async with control(server.host, server.port, token_of(server)) as hub:
            room = ScriptedSatellite(server.uri, "hall", credential=credential)
            await room.start()
            assert await tell(hub, "hall", "started", **timer("long", 600, start_minutes=10))
            pasta = timer("pasta", 5, start_minutes=5, name="pasta")
            assert await tell(hub, "hall", "started", **pasta)
            await timer_event(room, "timer-started", "pasta")
            await room.stop()

            # Away: what Home Assistant says is kept, and a finish is not delivered.
            assert not await tell(hub, "hall", "finished", **{**pasta, "seconds_left": 0})
            assert not await tell(hub, "hall", "started", **timer("tea", 120, active=False))

            back = ScriptedSatellite(server.uri, "hall", credential=credential)
            await back.start()
            try:
                long = (await timer_event(back, "timer-started", "long")).event.data
                assert 590 <= long["total_seconds"] <= 600 and long["start_minutes"] == 10
                await timer_event(back, "timer-started", "tea")
                tea = (await timer_event(back, "timer-updated", "tea")).event.data
                assert tea == {"id": "tea", "is_active": False, "total_seconds": 120}
                rang_at = time.monotonic()
                await timer_event(back, "timer-finished", "pasta")
                await timer_event(back, "timer-finished", "pasta", count=2)
                assert await announced(back, 1) == ["Your 5 minute pasta timer is done."]
                # Nobody stops it: it ends at its limit (20 s), and the satellite is told.
                await timer_event(back, "timer-cancelled", "pasta", timeout_s=60)
                assert time.monotonic() - rang_at >= 18
                assert not of_timer(back, "timer-started", "pasta")
            finally:
                await back.stop()
    finally:
        await satellites_command(server, "remove", "hall")


@pytest.mark.models
async def test_bad_timer_events_are_refused(server: ServerProcess) -> None:
    async with control(server.host, server.port, token_of(server)) as hub:
        for change, info in [
            ("rang", timer("t", 1)),
            ("started", {"id": "t", "seconds_left": -1}),
            ("started", {"id": "", "seconds_left": 1}),
        ]:
            answer = await hub.request("locara-timer", satellite="x", change=change, timer=info)
            assert answer.type == "error" and answer.data["code"] == "bad-request", answer
        # No such satellite connected: kept, not delivered.
        assert not await tell(hub, "nobody", "started", **timer("t", 5))
