"""Home control through the conversation agent the user chose, against a real server and
real satellites: the default agent and an area's own, chosen in the options flow; the
satellite's device (and its assist_satellite entity), language and conversation go with
each request; what the agent does not handle is left to the server's LLM; a chosen
agent whose integration is removed gives way to Home Assistant's built-in agent.

The chosen agents are real conversation agents of a test integration, registered as
any integration registers one (`conversation.async_set_agent` for its config entry)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult
from homeassistant.const import MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    mock_config_flow,
    mock_integration,
    mock_platform,
)

from custom_components.locara.const import DOMAIN
from custom_components.locara.home_control import PASSES_SATELLITE, async_ask_home_assistant
from custom_components.locara.protocol import HomeRequest

from .conftest import LocaraServer
from .locara_helpers import (
    Satellite,
    add_kitchen_light,
    audio_seconds,
    enrolled_satellite,
    say_until_heard,
    server_id_of,
    setup_entry,
    state_of,
    synthesize,
    wait_until,
    words,
)

AGENT_DOMAIN = "locara_test_agent"
KITCHEN_WORDS = {"turn", "on", "kitchen"}
HOME_CONTROL_LOG = "custom_components.locara.home_control"


class RecordingAgent(conversation.AbstractConversationAgent):
    """An integration's conversation agent: it keeps what it hears and answers `answer`;
    words about a capital it does not understand, and on "broken" or "crash" it fails
    (its service down, or a bug)."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.heard: list[conversation.ConversationInput] = []

    @property
    def supported_languages(self) -> Literal["*"]:
        return MATCH_ALL

    async def async_process(
        self, user_input: conversation.ConversationInput
    ) -> conversation.ConversationResult:
        self.heard.append(user_input)
        text = words(user_input.text)
        if "broken" in text:
            raise HomeAssistantError("the agent's service is down")
        if "crash" in text:
            raise RuntimeError("a bug in the agent")
        response = intent.IntentResponse(language=user_input.language)
        if "capital" in text:
            response.async_set_error(
                intent.IntentResponseErrorCode.NO_INTENT_MATCH, "Sorry, I did not understand."
            )
        else:
            response.async_set_speech(self.answer)
        return conversation.ConversationResult(
            response=response, conversation_id=user_input.conversation_id
        )


async def _setup_agent_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    agent = RecordingAgent(entry.data["answer"])
    entry.runtime_data = agent
    conversation.async_set_agent(hass, entry, agent)
    return True


async def _unload_agent_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    conversation.async_unset_agent(hass, entry)
    return True


class AgentFlow(ConfigFlow):
    """The test integration's config flow: its entries are made by the tests."""

    VERSION = 1


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> AsyncIterator[None]:
    """Home Assistant's core integration, which a real HA always has (conversation needs
    it), and the integration of the tests' conversation agents."""
    assert await async_setup_component(hass, "homeassistant", {})
    mock_integration(
        hass,
        MockModule(
            AGENT_DOMAIN,
            dependencies=["conversation"],
            async_setup_entry=_setup_agent_entry,
            async_unload_entry=_unload_agent_entry,
        ),
    )
    # Its entries are set up as any integration's: one with a config flow.
    mock_platform(hass, f"{AGENT_DOMAIN}.config_flow")
    with mock_config_flow(AGENT_DOMAIN, AgentFlow):
        yield


@pytest.fixture
async def entry(hass: HomeAssistant, locara_server: LocaraServer) -> ConfigEntry:
    return await setup_entry(hass, locara_server)


async def add_agent(hass: HomeAssistant, name: str, answer: str) -> tuple[str, RecordingAgent]:
    """A conversation agent of its own integration entry: its agent id, and the agent."""
    agent_entry = MockConfigEntry(domain=AGENT_DOMAIN, title=name, data={"answer": answer})
    agent_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(agent_entry.entry_id)
    await hass.async_block_till_done()
    info = conversation.async_get_agent_info(hass, agent_entry.entry_id)
    assert info is not None and info.name == name, info
    agent: RecordingAgent = agent_entry.runtime_data
    return agent_entry.entry_id, agent


async def options(
    hass: HomeAssistant, entry: ConfigEntry, step: str, *user_inputs: dict[str, Any]
) -> ConfigFlowResult:
    """The options flow's menu, `step`, then each of `user_inputs` in turn."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU, result
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    for user_input in user_inputs:
        assert result["type"] is FlowResultType.FORM, result
        result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    return result


async def device_of(hass: HomeAssistant, server: LocaraServer, room: Satellite) -> dr.DeviceEntry:
    """The satellite's device, once the integration has made it."""
    identifier = (DOMAIN, f"{server_id_of(server)}:{room.name}")
    devices = dr.async_get(hass)
    await wait_until(
        lambda: devices.async_get_device(identifiers={identifier}) is not None,
        f"{room.name}'s device",
    )
    device = devices.async_get_device(identifiers={identifier})
    assert device is not None
    return device


async def say(room: Satellite, speech: bytes) -> str:
    """Say `speech` (until it is heard) in the room; the text of the spoken answer."""
    mark = await say_until_heard(room, speech, KITCHEN_WORDS)
    handled = await room.wait_for("handled", after=mark)
    assert audio_seconds(room.events[mark:]) > 0.5, "the answer was spoken"
    text: str = handled.data["text"]
    return text


async def test_the_chosen_agent_answers_and_the_built_in_one_when_it_is_gone(
    hass: HomeAssistant,
    locara_server: LocaraServer,
    entry: ConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    light = await add_kitchen_light(hass)
    agent_id, agent = await add_agent(hass, "Butler", "The butler heard you.")
    result = await options(hass, entry, "home_agent", {"home_agent": agent_id})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert entry.options == {"home_agent": agent_id}
    speech = await synthesize(locara_server, "Turn on the kitchen lights.")

    async with enrolled_satellite(hass, locara_server, "hall", area="Hall") as room:
        device = await device_of(hass, locara_server, room)
        assert await say(room, speech) == "The butler heard you."
        heard = agent.heard[-1]
        assert words(heard.text) >= KITCHEN_WORDS, heard
        assert (heard.device_id, heard.language, heard.agent_id) == (device.id, "en", agent_id)
        assert heard.conversation_id, heard
        assert state_of(hass, light) == "off", "the built-in agent was asked too"

        # Its integration removed: Home Assistant's own agent answers, with a warning.
        assert await hass.config_entries.async_remove(agent_id)
        await hass.async_block_till_done()
        asked = len(agent.heard)
        caplog.clear()
        with caplog.at_level(logging.WARNING, HOME_CONTROL_LOG):
            assert await say(room, speech) == "Turned on the light"
        assert state_of(hass, light) == "on"
        assert len(agent.heard) == asked
        assert f"The conversation agent {agent_id} chosen for home control is gone" in (caplog.text)
    assert entry.options == {"home_agent": agent_id}, "the choice stays until changed"


async def test_an_areas_agent_answers_in_that_area_only(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    light = await add_kitchen_light(hass)
    agent_id, agent = await add_agent(hass, "Cook", "The cook is on it.")
    kitchen = ar.async_get(hass).async_get_or_create("Kitchen")
    result = await options(hass, entry, "area_home_agent", {"area": kitchen.id})
    assert result["step_id"] == "area_home_agent_choice", result
    assert result["description_placeholders"]["default"] == "Home Assistant", result
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"agent": agent_id}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert entry.options == {"area_agents": {kitchen.id: agent_id}}
    result = await options(hass, entry, "area_home_agent")
    assert result["description_placeholders"]["chosen"] == "Kitchen: Cook", result

    # A change of the server's settings keeps the entry's options.
    settings = entry.runtime_data.client.state.settings
    defaults = {key: settings[key] for key in ("default_backend", "default_persona")}
    result = await options(hass, entry, "defaults", defaults)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert entry.options == {"area_agents": {kitchen.id: agent_id}}

    speech = await synthesize(locara_server, "Turn on the kitchen lights.")
    async with (
        enrolled_satellite(hass, locara_server, "kitchen", area="Kitchen") as kitchen_room,
        enrolled_satellite(hass, locara_server, "hall", area="Hall") as hall_room,
    ):
        kitchen_device = await device_of(hass, locara_server, kitchen_room)
        assert kitchen_device.area_id == kitchen.id
        await device_of(hass, locara_server, hall_room)

        assert await say(kitchen_room, speech) == "The cook is on it."
        assert agent.heard[-1].device_id == kitchen_device.id
        assert state_of(hass, light) == "off"

        asked = len(agent.heard)
        assert await say(hall_room, speech) == "Turned on the light"
        await wait_until(lambda: state_of(hass, light) == "on", "the light on")
        assert len(agent.heard) == asked, "the kitchen's agent heard the hall"

    # Cleared: the area is back to the default agent.
    result = await options(hass, entry, "area_home_agent", {"area": kitchen.id}, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert entry.options == {"area_agents": {}}


async def test_what_the_agent_does_not_handle_is_left_to_the_llm(
    hass: HomeAssistant,
    locara_server: LocaraServer,
    entry: ConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Straight to the integration's answer to a request (no speech): what the chosen agent
    answers with "not understood" or fails on is `handled: false`, so the server's LLM
    answers; the satellite's context goes with each request."""
    default_id, default_agent = await add_agent(hass, "Butler", "The butler heard you.")
    study_id, study_agent = await add_agent(hass, "Librarian", "Quiet, please.")
    study = ar.async_get(hass).async_get_or_create("Study")
    assert (await options(hass, entry, "home_agent", {"home_agent": default_id}))[
        "type"
    ] is FlowResultType.CREATE_ENTRY
    result = await options(hass, entry, "area_home_agent", {"area": study.id}, {"agent": study_id})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result

    # An agent that does not exist is refused.
    result = await options(hass, entry, "home_agent", {"home_agent": "conversation.nobody"})
    assert result["errors"] == {"home_agent": "unknown_agent"}, result
    result = await options(hass, entry, "area_home_agent", {"area": study.id}, {"agent": "nobody"})
    assert result["errors"] == {"agent": "unknown_agent"}, result

    async with enrolled_satellite(hass, locara_server, "desk", area="Study") as room:
        device = await device_of(hass, locara_server, room)
        # The satellite's assist_satellite entity (as the integration registers one)
        # goes with its requests.
        satellite_entity = er.async_get(hass).async_get_or_create(
            "assist_satellite", DOMAIN, f"{server_id_of(locara_server)}:desk-test",
            config_entry=entry, device_id=device.id,
        )  # fmt: skip
        satellites = {
            e.entity_id
            for e in er.async_entries_for_device(er.async_get(hass), device.id)
            if e.domain == "assist_satellite"
        }
        assert satellite_entity.entity_id in satellites

        def request(text: str, satellite: str = "desk", area: str | None = "Study") -> HomeRequest:
            return HomeRequest("r1", text, "en", satellite, area, "conversation-1")

        answer = await async_ask_home_assistant(hass, entry, request("Open the curtains."))
        assert answer == (True, "Quiet, please.")
        heard = study_agent.heard[-1]
        assert (heard.text, heard.device_id, heard.conversation_id, heard.language) == (
            "Open the curtains.",
            device.id,
            "conversation-1",
            "en",
        )
        # Older Home Assistant releases do not pass the satellite on (home_control.py).
        sent = getattr(heard, "satellite_id", None)
        assert sent in satellites if PASSES_SATELLITE else sent is None, heard

        caplog.clear()
        with caplog.at_level(logging.WARNING, HOME_CONTROL_LOG):
            for text in ("What is the capital of France?", "Broken.", "Crash."):
                asked = len(study_agent.heard)
                answer = await async_ask_home_assistant(hass, entry, request(text))
                assert answer == (False, None), text
                assert len(study_agent.heard) == asked + 1, text
        assert "the agent's service is down" in caplog.text
        assert "a bug in the agent" in caplog.text

    # A satellite without a device in Home Assistant: its area is the one it reports.
    answer = await async_ask_home_assistant(hass, entry, request("Hello.", "ghost", "Study"))
    assert answer == (True, "Quiet, please.") and study_agent.heard[-1].device_id is None
    answer = await async_ask_home_assistant(hass, entry, request("Hello.", "ghost", None))
    assert answer == (True, "The butler heard you.")
    assert getattr(default_agent.heard[-1], "satellite_id", None) is None
