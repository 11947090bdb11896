"""A server in open mode (`security.open_satellites`, for trying Locara out) admits
satellites that are not enrolled, but never gives them home control: their words never
reach Home Assistant, however they ask. Enrolled satellites on the same server still
have it, so it is the enrolment that makes the difference, not the words or the mode."""

from __future__ import annotations

import pytest
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.locara.protocol import HomeRequest

from .conftest import DEFAULT_CONFIG_EXTRA, LocaraServer
from .locara_helpers import (
    add_kitchen_light,
    enrolled_satellite,
    satellite,
    say_until_heard,
    setup_entry,
    state_of,
    synthesize,
    wait_until,
)

OPEN_MODE = DEFAULT_CONFIG_EXTRA + "\n[security]\nopen_satellites = true\n"
KITCHEN_LIGHTS = {"turn", "on", "kitchen"}


@pytest.fixture(scope="module")
def locara_config_extra() -> str:
    return OPEN_MODE


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> None:
    """Home Assistant's core integration, which a real HA always has (conversation needs it)."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
async def entry(hass: HomeAssistant, locara_server: LocaraServer) -> ConfigEntry:
    return await setup_entry(hass, locara_server)


async def test_an_unenrolled_satellite_gets_no_home_control(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    light = await add_kitchen_light(hass)
    asked: list[HomeRequest] = []
    client = entry.runtime_data.client
    answer = client.on_home_request
    assert answer is not None

    def note(request: HomeRequest) -> None:
        asked.append(request)
        answer(request)

    client.on_home_request = note
    speech = await synthesize(locara_server, "Turn on the kitchen lights.")

    # Over plain TCP, without a pairing code: open mode lets it in.
    async with satellite(locara_server, "guest", area="Kitchen") as room:
        mark = await say_until_heard(room, speech, KITCHEN_LIGHTS)
        reply = await room.wait_for("handled", after=mark)
        assert reply.data["text"] != "Turned on the light", reply.data
    assert state_of(hass, light) == "off"
    assert asked == [], "the server asked Home Assistant for an unenrolled satellite"

    async with enrolled_satellite(hass, locara_server, "pantry", area="Kitchen") as room:
        mark = await say_until_heard(room, speech, KITCHEN_LIGHTS)
        await wait_until(lambda: state_of(hass, light) == "on", "the light on")
        reply = await room.wait_for("handled", after=mark)
        assert reply.data["text"] == "Turned on the light", reply.data
    assert {request.satellite for request in asked} == {"pantry"}
