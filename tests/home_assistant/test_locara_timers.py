"""Home Assistant's timers from a Locara room, against a real server and satellite: a
timer set by voice fires in that room and rings until the user says "stop"; one that
finishes while its satellite is away is shown in Home Assistant."""

from __future__ import annotations

import pytest
from homeassistant.components import persistent_notification
from homeassistant.components.intent import async_device_supports_timers
from homeassistant.components.intent.const import TIMER_DATA
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component

from custom_components.locara.const import DOMAIN
from custom_components.locara.timers import EVENT_TIMER_MISSED

from .conftest import DEFAULT_CONFIG_EXTRA, LocaraServer
from .locara_helpers import (
    Satellite,
    enrolled_satellite,
    say_until_heard,
    server_id_of,
    setup_entry,
    synthesize,
    wait_until,
    words,
)

# Short rounds of ringing, so that the test sees several.
CONFIG_EXTRA = (
    DEFAULT_CONFIG_EXTRA
    + """
[timers]
ring_interval_s = 1
ring_limit_s = 60
"""
)


@pytest.fixture(scope="module")
def locara_config_extra() -> str:
    return CONFIG_EXTRA


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> None:
    """Home Assistant's core integration, which a real HA always has (conversation needs
    it), and its intent integration, which every HA with Assist has (the timers' own)."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "intent", {})


@pytest.fixture
async def entry(hass: HomeAssistant, locara_server: LocaraServer) -> ConfigEntry:
    return await setup_entry(hass, locara_server)


async def timer_device(hass: HomeAssistant, server: LocaraServer, room: Satellite) -> str:
    """The satellite's device id, once its timer handler is registered."""
    identifier = (DOMAIN, f"{server_id_of(server)}:{room.name}")
    registry = dr.async_get(hass)

    def ready() -> bool:
        device = registry.async_get_device(identifiers={identifier})
        return device is not None and async_device_supports_timers(hass, device.id)

    await wait_until(ready, f"{room.name}'s timer handler")
    device = registry.async_get_device(identifiers={identifier})
    assert device is not None
    return device.id


def of_type(room: Satellite, event_type: str, after: int) -> list[dict[str, object]]:
    return [event.data for event in room.events[after:] if event.type == event_type]


async def test_a_timer_set_by_voice_rings_in_its_room_until_stop(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    set_timer = await synthesize(locara_server, "Set a timer for 3 seconds.")
    stop = await synthesize(locara_server, "Stop.")
    async with enrolled_satellite(hass, locara_server, "kitchen", area="Kitchen") as room:
        await timer_device(hass, locara_server, room)
        mark = await say_until_heard(room, set_timer, {"timer", "seconds"})
        # Home Assistant's own timer intent answered, for this satellite's device.
        handled = await room.wait_for("handled", after=mark)
        # ("three" or "3": as Whisper wrote it, and Home Assistant says it back.)
        assert {"timer", "set", "seconds"} <= words(str(handled.data["text"])), handled.data
        started = await room.wait_for("timer-started", after=mark)
        assert started.data["total_seconds"] == 3 and started.data["start_seconds"] == 3
        timer_id = started.data["id"]

        # It fires in this room, round after round: the cue, then which timer it was.
        same = lambda data: data.get("id") == timer_id  # noqa: E731
        await room.wait_for("timer-finished", same, after=mark, timeout_s=30)
        ringing = room.mark()
        await room.wait_for("timer-finished", same, after=ringing, timeout_s=30)
        said = [d["text"] for d in of_type(room, "handled", mark) if d["text"]]
        assert "Your 3 second timer is done." in said, said

        stopping = room.mark()
        await room.say(stop)
        heard = await room.wait_for("transcript", after=stopping)
        assert "stop" in words(str(heard.data["text"])), heard.data
        await room.wait_for("timer-cancelled", same, after=stopping, timeout_s=30)
        rang = len(of_type(room, "timer-finished", stopping))
        quiet = room.mark()
        await hass.async_block_till_done()
        with pytest.raises(AssertionError):  # no more rounds after "stop"
            await room.wait_for("timer-finished", after=quiet, timeout_s=5)
        assert rang <= 1, "at most the round that was under way when the user spoke"
        # "Stop" went nowhere else: no reply but the ringing's own words.
        replies = [d["context"] for d in of_type(room, "handled-start", stopping)]
        assert all(str(c["reply_id"]).startswith("announce-") for c in replies), replies  # type: ignore[index]


async def test_a_timer_that_finishes_while_its_satellite_is_away_is_shown(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    async with enrolled_satellite(hass, locara_server, "porch") as room:
        device_id = await timer_device(hass, locara_server, room)
    missed: list[Event] = []

    @callback
    def note(event: Event) -> None:
        missed.append(event)

    hass.bus.async_listen(EVENT_TIMER_MISSED, note)
    # As the timer intent starts one, for the satellite's device.
    hass.data[TIMER_DATA].start_timer(device_id, None, None, 1, "en", name="bread")
    await wait_until(lambda: bool(missed), "the missed timer's event", timeout_s=20)
    assert missed[0].data["satellite"] == "porch" and missed[0].data["name"] == "bread"
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert any("bread" in n["message"] for n in notifications.values()), notifications
