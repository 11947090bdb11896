"""The Locara integration against a real server and real satellites: entities that follow
the server's pushes, selects and switches that change its settings, home control that
turns on a light from real speech, announcements, enrolling and removing satellites,
the options, diagnostics, the server's pinned id and certificate, and a server that
goes away and comes back.

The server admits only enrolled satellites (its default): every satellite here is
enrolled through the integration (`locara.add_satellite`) and connects with its pairing
code, as `locara-satellite --pair CODE` does."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.const import STATE_UNAVAILABLE, EntityCategory
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.locara import client as locara_client
from custom_components.locara.auth import AuthError, PairingCode
from custom_components.locara.const import DOMAIN, SATELLITE_STATES
from custom_components.locara.home_control import async_ask_home_assistant
from custom_components.locara.protocol import HomeRequest

from .conftest import DEFAULT_CONFIG_EXTRA, LocaraServer
from .locara_helpers import (
    Satellite,
    SessionRefused,
    add_kitchen_light,
    add_satellite,
    audio_seconds,
    enable_before_added,
    enrolled_satellite,
    entity_id,
    fingerprint_of,
    pin_of,
    satellite,
    saved_settings,
    say_until_heard,
    server_id_of,
    setup_entry,
    state_of,
    synthesize,
    token_of,
    wait_until,
    words,
)

# Two personas (one that never asks Home Assistant) and a second pipeline backend, so
# that a satellite's selects have something to choose.
CONFIG_EXTRA = (
    DEFAULT_CONFIG_EXTRA
    + """
[[personas]]
name = "locara"

[[personas]]
name = "pirate"
system_prompt = "You are a pirate. Answer in one short sentence."
home_control = "llm_only"

[[rooms]]
satellite = "spare"
backend = "voice-pipeline-alt"
"""
)


@pytest.fixture(scope="module")
def locara_config_extra() -> str:
    return CONFIG_EXTRA


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> None:
    """Home Assistant's core integration, which a real HA always has (conversation needs it)."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
async def entry(hass: HomeAssistant, locara_server: LocaraServer) -> ConfigEntry:
    return await setup_entry(hass, locara_server)


@pytest.fixture
def fast_reconnect() -> Iterator[None]:
    with patch.object(locara_client, "RECONNECT_DELAYS_S", (0.2, 0.5)):
        yield


def satellite_entities(hass: HomeAssistant, server: LocaraServer, name: str) -> dict[str, str]:
    """The satellite's entities that are enabled from the start."""
    sid = server_id_of(server)
    return {
        "state": entity_id(hass, "sensor", f"{sid}:{name}-state"),
        "backend": entity_id(hass, "select", f"{sid}:{name}-backend"),
        "persona": entity_id(hass, "select", f"{sid}:{name}-persona"),
        "mute": entity_id(hass, "switch", f"{sid}:{name}-mute"),
    }


async def entities_of_new_satellite(
    hass: HomeAssistant, server: LocaraServer, room: Satellite
) -> dict[str, str]:
    sid = server_id_of(server)
    await wait_until(
        lambda: (
            state_of(hass, _registered(hass, "switch", f"{sid}:{room.name}-mute"))
            not in (None, STATE_UNAVAILABLE)
        ),
        f"{room.name}'s entities",
    )
    return satellite_entities(hass, server, room.name)


def _registered(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id) or ""


async def test_the_server_is_a_device_with_its_sensors(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    sid = server_id_of(locara_server)
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sid)})
    assert device is not None and device.name == locara_server.zeroconf_name
    assert state_of(hass, entity_id(hass, "sensor", f"{sid}-sessions_active")) == "0"
    health = hass.states.get(entity_id(hass, "sensor", f"{sid}-backend_health"))
    assert health is not None and health.state == "ok", health
    assert health.attributes["unhealthy_backends"] == []
    latency = entity_id(hass, "sensor", f"{sid}-last_latency")
    assert hass.states.get(latency) is not None
    # The server's health, latency and sessions are diagnostics, not controls.
    registry = er.async_get(hass)
    for key in ("sessions_active", "backend_health", "last_latency"):
        registered = registry.async_get(entity_id(hass, "sensor", f"{sid}-{key}"))
        assert registered is not None and registered.entity_category is EntityCategory.DIAGNOSTIC


async def test_a_satellite_that_connects_gets_entities_that_change_its_settings(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    sid = server_id_of(locara_server)
    assert not _registered(hass, "switch", f"{sid}:kitchen-mute")
    sessions = entity_id(hass, "sensor", f"{sid}-sessions_active")

    async with enrolled_satellite(hass, locara_server, "kitchen", area="Kitchen") as room:
        entities = await entities_of_new_satellite(hass, locara_server, room)
        await wait_until(lambda: state_of(hass, sessions) == "1", "one active session")
        assert state_of(hass, entities["state"]) in SATELLITE_STATES
        assert state_of(hass, entities["backend"]) == "voice-pipeline-default"
        assert state_of(hass, entities["persona"]) == "locara"
        assert state_of(hass, entities["mute"]) == "off"
        backend = hass.states.get(entities["backend"])
        assert backend is not None
        assert backend.attributes["options"] == ["voice-pipeline-alt", "voice-pipeline-default"]

        # Its own device, in its area, through the server's.
        devices = dr.async_get(hass)
        device = devices.async_get_device(identifiers={(DOMAIN, f"{sid}:kitchen")})
        server_device = devices.async_get_device(identifiers={(DOMAIN, sid)})
        assert device is not None and server_device is not None
        assert device.via_device_id == server_device.id
        kitchen = ar.async_get(hass).async_get_area_by_name("Kitchen")
        assert kitchen is not None and device.area_id == kitchen.id

        # The persona select moves the live session and the server keeps the choice.
        mark = room.mark()
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": entities["persona"], "option": "pirate"},
            blocking=True,
        )
        moved = await room.wait_for("locara-session", lambda d: d["persona"] == "pirate", mark)
        assert moved.data["session_id"] == room.session["session_id"]
        await wait_until(lambda: state_of(hass, entities["persona"]) == "pirate", "persona")
        # The satellite's own entry sets only what was chosen: the backend stays the one
        # the defaults give.
        kitchen_room = {"satellite": "kitchen", "persona": "pirate"}
        assert kitchen_room in saved_settings(locara_server)["rooms"]
        assert state_of(hass, entities["backend"]) == "voice-pipeline-default"

        mark = room.mark()
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": entities["backend"], "option": "voice-pipeline-alt"},
            blocking=True,
        )
        await room.wait_for("locara-session", lambda d: d["backend"] == "voice-pipeline-alt", mark)
        await wait_until(
            lambda: state_of(hass, entities["backend"]) == "voice-pipeline-alt", "backend"
        )
        assert {
            "satellite": "kitchen",
            "persona": "pirate",
            "backend": "voice-pipeline-alt",
        } in saved_settings(locara_server)["rooms"]

        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": entities["mute"]}, blocking=True
        )
        assert saved_settings(locara_server)["muted"] == ["kitchen"]
        await wait_until(lambda: state_of(hass, entities["mute"]) == "on", "muted")
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": entities["mute"]}, blocking=True
        )
        assert saved_settings(locara_server)["muted"] == []
        await wait_until(lambda: state_of(hass, entities["mute"]) == "off", "unmuted")

    # It left: its entities stay, unavailable.
    await wait_until(
        lambda: all(state_of(hass, e) == STATE_UNAVAILABLE for e in entities.values()),
        "the satellite's entities unavailable",
    )
    await wait_until(lambda: state_of(hass, sessions) == "0", "no active session")


async def test_a_new_satellites_transcript_sensor_is_registered_but_disabled(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    """What is said in a room goes into Home Assistant's history only once a user turns
    the sensor on: a new install has it, off."""
    async with enrolled_satellite(hass, locara_server, "study", area="Study") as room:
        await entities_of_new_satellite(hass, locara_server, room)
        sid = server_id_of(locara_server)
        transcript = entity_id(hass, "sensor", f"{sid}:study-last_transcript")
        registered = er.async_get(hass).async_get(transcript)
        assert registered is not None
        assert registered.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(transcript) is None
        # The room's settings are configuration entities; its state is its main sensor.
        for key, platform in (("backend", "select"), ("persona", "select"), ("mute", "switch")):
            setting = er.async_get(hass).async_get(entity_id(hass, platform, f"{sid}:study-{key}"))
            assert setting is not None and setting.entity_category is EntityCategory.CONFIG, key
        state = er.async_get(hass).async_get(entity_id(hass, "sensor", f"{sid}:study-state"))
        assert state is not None and state.entity_category is None


async def test_two_mute_switches_turned_on_at_the_same_moment_both_mute(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    """One call on two switches (as a script or a scene does): Home Assistant turns them on
    at once, and neither change undoes the other on the server."""
    async with (
        enrolled_satellite(hass, locara_server, "nursery", area="Nursery") as nursery,
        enrolled_satellite(hass, locara_server, "office", area="Office") as office,
    ):
        mutes = [
            (await entities_of_new_satellite(hass, locara_server, room))["mute"]
            for room in (nursery, office)
        ]
        await hass.services.async_call("switch", "turn_on", {"entity_id": mutes}, blocking=True)
        assert sorted(saved_settings(locara_server)["muted"]) == ["nursery", "office"]
        await wait_until(lambda: all(state_of(hass, m) == "on" for m in mutes), "both muted")

        await hass.services.async_call("switch", "turn_off", {"entity_id": mutes}, blocking=True)
        assert saved_settings(locara_server)["muted"] == []
        await wait_until(lambda: all(state_of(hass, m) == "off" for m in mutes), "both unmuted")


async def test_home_control_turns_on_a_light_from_real_speech(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    light = await add_kitchen_light(hass)
    speech = await synthesize(locara_server, "Turn on the kitchen lights.")
    transcript_id = f"{server_id_of(locara_server)}:hall-last_transcript"
    enable_before_added(hass, entry, "sensor", transcript_id)

    # Enrolled through the integration: the pairing code names this server, by its id and
    # the certificate the entry pinned, and holds the satellite's key.
    response = await hass.services.async_call(
        DOMAIN, "add_satellite", {"name": "hall"}, blocking=True, return_response=True
    )
    assert response is not None and response["name"] == "hall", response
    code = response["pairing_code"]
    assert isinstance(code, str), response
    credential = PairingCode.decode(code)
    assert (credential.server_id, credential.fingerprint) == (
        entry.data["server_id"],
        entry.data["fingerprint"],
    )

    async with satellite(locara_server, "hall", area="Hall", pairing_code=code) as room:
        entities = await entities_of_new_satellite(hass, locara_server, room)
        last_transcript = entity_id(hass, "sensor", transcript_id)
        states: list[str] = []

        @callback  # on HA's loop, in order (a plain function would run in its executor)
        def track(event: Event[EventStateChangedData]) -> None:
            if (new_state := event.data["new_state"]) is not None:
                states.append(new_state.state)

        stop_tracking = async_track_state_change_event(hass, entities["state"], track)
        mark = await say_until_heard(room, speech, {"turn", "on", "kitchen"})
        await wait_until(lambda: state_of(hass, light) == "on", "the light on")
        handled = await room.wait_for("handled", after=mark)
        assert handled.data["text"] == "Turned on the light", (
            f"the reply is not Home Assistant's: {handled.data}"
        )
        assert audio_seconds(room.events[mark:]) > 0.5, "the reply was spoken"
        await wait_until(
            lambda: "kitchen" in words(state_of(hass, last_transcript)),
            "the last transcript",
        )
        try:
            await wait_until(lambda: states[-1:] == ["listening"], "listening again")
        except AssertionError as error:
            seen = [event.type for event in room.events[mark:]]
            raise AssertionError(f"{error}: states {states}, events {seen}") from None
        assert {"thinking", "speaking"} <= set(states), states
        stop_tracking()

    # What Home Assistant does not understand, or finds nothing to act on, is left to the
    # LLM: the integration answers `handled: false` for it.
    for text in ("What is the capital of France?", "Turn on the garage lights."):
        request = HomeRequest("h1", text, "en", "hall", "Hall", "c1")
        assert await async_ask_home_assistant(hass, entry, request) == (False, None), text


async def test_announce_and_start_conversation_speak_on_the_satellite(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    sid = server_id_of(locara_server)
    async with enrolled_satellite(hass, locara_server, "den", area="Den") as room:
        await entities_of_new_satellite(hass, locara_server, room)
        device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{sid}:den")})
        assert device is not None and device.area_id is not None

        mark = room.mark()
        await hass.services.async_call(
            DOMAIN,
            "announce",
            {"message": "Dinner is ready.", "device_id": device.id},
            blocking=True,
        )
        handled = await room.wait_for("handled", after=mark)
        assert handled.data["text"] == "Dinner is ready."
        seconds = audio_seconds(room.events[mark:])
        assert seconds > 0.5, f"{seconds:.2f} s of announcement audio"

        mark = room.mark()
        await hass.services.async_call(
            DOMAIN,
            "start_conversation",
            {"message": "Shall I order more coffee?", "area_id": device.area_id},
            blocking=True,
        )
        await room.wait_for("handled", lambda d: d["text"] == "Shall I order more coffee?", mark)
        await room.wait_for("locara-listen", after=mark)

    attic = ar.async_get(hass).async_create("Attic")
    with pytest.raises(ServiceValidationError, match="No Locara satellite"):
        await hass.services.async_call(
            DOMAIN, "announce", {"message": "Hello?", "area_id": attic.id}, blocking=True
        )
    with pytest.raises(ServiceValidationError, match="den is not connected"):
        await hass.services.async_call(
            DOMAIN, "announce", {"message": "Hello?", "device_id": device.id}, blocking=True
        )
    server_device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sid)})
    assert server_device is not None
    with pytest.raises(ServiceValidationError, match="is not a Locara satellite"):
        await hass.services.async_call(
            DOMAIN,
            "announce",
            {"message": "Hello?", "device_id": server_device.id},
            blocking=True,
        )
    with pytest.raises(ServiceValidationError, match="is not loaded"):
        await hass.services.async_call(
            DOMAIN,
            "announce",
            {"message": "Hello?", "area_id": attic.id, "config_entry_id": "elsewhere"},
            blocking=True,
        )


async def test_removing_a_satellite_ends_its_session_and_its_pairing_code(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    code = await add_satellite(hass, "cellar")
    async with satellite(locara_server, "cellar", area="Cellar", pairing_code=code) as room:
        entities = await entities_of_new_satellite(hass, locara_server, room)
        response = await hass.services.async_call(
            DOMAIN, "remove_satellite", {"name": "cellar"}, blocking=True, return_response=True
        )
        assert response == {"name": "cellar", "ended_session": True}
        await room.ended_by_server(timeout_s=5)
        await wait_until(
            lambda: state_of(hass, entities["mute"]) == STATE_UNAVAILABLE,
            "the removed satellite's entities unavailable",
        )

    # Its pairing code proves nothing any more, and without one this server (enrolled
    # satellites only) admits no satellite of that name either.
    with pytest.raises(AuthError) as refused:
        async with satellite(locara_server, "cellar", pairing_code=code):
            pass
    assert refused.value.code == "unauthorized", refused.value
    with pytest.raises(SessionRefused) as refused_session:
        async with satellite(locara_server, "cellar"):
            pass
    assert refused_session.value.code == "unauthorized", refused_session.value

    with pytest.raises(ServiceValidationError, match="No satellite named cellar is enrolled"):
        await hass.services.async_call(
            DOMAIN, "remove_satellite", {"name": "cellar"}, blocking=True
        )
    with pytest.raises(ServiceValidationError, match=r"refused the satellite: .*64 characters"):
        await add_satellite(hass, "x" * 65)


async def test_options_change_the_servers_settings_and_not_the_entry(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    async def options(step: str, user_input: dict[str, Any]) -> ConfigFlowResult:
        result = await hass.config_entries.options.async_init(entry.entry_id)
        assert result["type"] is FlowResultType.MENU, result
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": step}
        )
        assert result["type"] is FlowResultType.FORM, result
        return await hass.config_entries.options.async_configure(result["flow_id"], user_input)

    result = await options(
        "defaults", {"default_backend": "voice-pipeline-alt", "default_persona": "pirate"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    settings = saved_settings(locara_server)
    assert (settings["default_backend"], settings["default_persona"]) == (
        "voice-pipeline-alt",
        "pirate",
    )

    # A new persona, then changed, then removed.
    voices = entry.runtime_data.client.state.voices
    result = await options("persona", {"persona": "__new__"})
    assert result["step_id"] == "persona_new", result
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "name": "butler",
            "system_prompt": "You are a butler.",
            "voice": voices[0],
            "language": "en",
            "home_control": "llm_only",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    butler = next(p for p in saved_settings(locara_server)["personas"] if p["name"] == "butler")
    assert butler["system_prompt"] == "You are a butler." and butler["voice"] == voices[0]
    assert butler["home_control"] == "llm_only"

    result = await options("persona", {"persona": "butler"})
    assert result["step_id"] == "persona_edit", result
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "system_prompt": "You are a very formal butler.",
            "language": "en",
            "home_control": "home_assistant_first",
            "greeting": "At your service.",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    butler = next(p for p in saved_settings(locara_server)["personas"] if p["name"] == "butler")
    assert butler["system_prompt"] == "You are a very formal butler."
    assert butler["greeting"] == "At your service." and butler["voice"] is None

    result = await options("persona", {"persona": "butler"})
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"language": "en", "home_control": "llm_only", "remove": True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert "butler" not in [p["name"] for p in saved_settings(locara_server)["personas"]]

    # The server refuses to lose its default persona: the form says why.
    result = await options("persona", {"persona": "pirate"})
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"language": "en", "home_control": "llm_only", "remove": True}
    )
    assert result["type"] is FlowResultType.FORM and result["errors"] == {"base": "rejected"}
    assert "pirate" in result["description_placeholders"]["error"]

    # An area's backend and persona, then cleared.
    kitchen = ar.async_get(hass).async_get_or_create("Kitchen")
    result = await options("area", {"area": kitchen.id})
    assert result["step_id"] == "area_room", result
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"backend": "voice-pipeline-default", "persona": "locara"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    area_room = {"area": "Kitchen", "backend": "voice-pipeline-default", "persona": "locara"}
    assert area_room in saved_settings(locara_server)["rooms"]
    result = await options("area", {"area": kitchen.id})
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert not [r for r in saved_settings(locara_server)["rooms"] if r.get("area") == "Kitchen"]

    result = await options(
        "defaults", {"default_backend": "voice-pipeline-default", "default_persona": "locara"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert entry.options == {}, "the settings live on the server, not in the entry"


def texts_in(value: object) -> Iterator[str]:
    """Every string in `value`, a structure of dicts and lists, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from texts_in(key)
            yield from texts_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts_in(item)


async def test_diagnostics_leave_out_the_token_the_words_and_the_prompts(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    locara_server: LocaraServer,
    entry: ConfigEntry,
) -> None:
    """Diagnostics go into bug reports: a room's last words and reply, and the personas'
    prompts, are there only as redacted, beside everything else as it was."""
    client = entry.runtime_data.client
    speech = await synthesize(locara_server, "What is the capital of France?")
    async with enrolled_satellite(hass, locara_server, "lounge", area="Lounge") as room:
        await entities_of_new_satellite(hass, locara_server, room)
        await room.say(speech)
        heard = (await room.wait_for("transcript")).data["text"]
        reply = (await room.wait_for("handled")).data["text"]
        await wait_until(
            lambda: client.state.satellites["lounge"].last_reply is not None, "the reply pushed"
        )
        record = client.state.satellites["lounge"]
        assert (record.last_transcript, record.last_reply) == (heard, reply)
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    prompts = [persona["system_prompt"] for persona in client.state.settings["personas"]]
    assert "You are a pirate. Answer in one short sentence." in prompts
    for secret in (token_of(locara_server), heard, reply, *prompts):
        shown = [text for text in texts_in(diagnostics) if secret in text]
        assert not shown, f"{secret!r} is in the diagnostics: {shown}"
    assert diagnostics["entry"]["data"]["token"] == "**REDACTED**"
    assert diagnostics["connected"] is True
    assert diagnostics["state"]["server"]["server_id"] == server_id_of(locara_server)
    lounge = diagnostics["state"]["satellites"]["lounge"]
    assert lounge["last_transcript"] == lounge["last_reply"] == "**REDACTED**"
    assert lounge["connected"] is True and lounge["area"] == "Lounge"
    personas = diagnostics["state"]["settings"]["personas"]
    names = [persona["name"] for persona in client.state.settings["personas"]]
    assert [persona["name"] for persona in personas] == names
    assert {persona["system_prompt"] for persona in personas} == {"**REDACTED**"}
    assert "lounge" in diagnostics["satellites_with_entities"]


async def test_the_entry_pins_the_servers_id_and_certificate(
    hass: HomeAssistant, locara_server: LocaraServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The first connection pins what the server proved; a server that proves the token
    with another certificate (its `tls/` made anew) is the token's holder, so the new
    certificate is pinned instead, and the change logged."""
    entry = await setup_entry(hass, locara_server)  # an entry that never connected
    assert {key: entry.data[key] for key in ("server_id", "fingerprint")} == pin_of(locara_server)

    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(entry, data={**entry.data, "fingerprint": "0" * 64})
    caplog.clear()
    with caplog.at_level(logging.WARNING, "custom_components.locara"):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"
    assert entry.data["fingerprint"] == fingerprint_of(locara_server)
    assert "shows a new TLS certificate" in caplog.text, caplog.text
    assert "pinned 0000000000000000" in caplog.text, caplog.text


async def test_entities_are_unavailable_while_the_server_is_down(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry, fast_reconnect: None
) -> None:
    sid = server_id_of(locara_server)
    sessions = entity_id(hass, "sensor", f"{sid}-sessions_active")
    assert state_of(hass, sessions) == "0"

    await locara_server.async_stop()
    await wait_until(lambda: state_of(hass, sessions) == STATE_UNAVAILABLE, "unavailable")
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "not_connected"

    await locara_server.async_start()
    await wait_until(lambda: state_of(hass, sessions) == "0", "available again", 30)
    async with enrolled_satellite(hass, locara_server, "porch") as room:
        entities = await entities_of_new_satellite(hass, locara_server, room)
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": entities["mute"]}, blocking=True
        )
        assert saved_settings(locara_server)["muted"] == ["porch"]
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": entities["mute"]}, blocking=True
        )

    # Unloading closes the connection: nothing is left running (phcc checks), and the
    # entities say so.
    client = entry.runtime_data.client
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert not client.connected
    assert state_of(hass, sessions) == STATE_UNAVAILABLE


async def test_a_server_with_a_new_token_asks_for_it(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry, fast_reconnect: None
) -> None:
    sessions = entity_id(hass, "sensor", f"{server_id_of(locara_server)}-sessions_active")
    await locara_server.async_stop()
    (locara_server.data_dir / "token").unlink()  # the server makes a new one at its start
    await locara_server.async_start()
    assert token_of(locara_server) != entry.data["token"]

    def reauth_flows() -> list[str]:
        return [
            flow["flow_id"]
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"]["source"] == SOURCE_REAUTH
        ]

    await wait_until(lambda: bool(reauth_flows()), "Home Assistant to ask for the new token")
    assert state_of(hass, sessions) == STATE_UNAVAILABLE
    result = await hass.config_entries.flow.async_configure(
        reauth_flows()[0], {"token": token_of(locara_server)}
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    await wait_until(lambda: state_of(hass, sessions) == "0", "the server's entities back")
