"""Home control: the server asks before its LLM answers, a Home Assistant agent answers.

A satellite's words come as `locara-home-request`. The conversation agent the user chose
for home control (in the entry's options: one for the satellite's area, else the
default; Home Assistant's built-in agent unless chosen otherwise) gets them as if they
had been said to the satellite's device (so "turn on the lights" means the lights of the
device's area), with the request's language and conversation, and the satellite's
assist_satellite entity when it has one.

What the agent does not handle is answered `handled: false`, and the server's LLM
answers instead. Whatever the agent, that is an error response that says the words were
not for it (it did not understand them, or found nothing to act on) or that it failed
(an LLM agent whose service is down): anything else is its answer, spoken in the room.
An LLM agent answers everything it can, so where one is chosen, the server's LLM
answers only when that agent fails.
"""

from __future__ import annotations

import inspect
import logging

from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import intent

from .client import CannotConnect
from .const import CONF_AREA_AGENTS, CONF_HOME_AGENT, DOMAIN, HOME_ASSISTANT_AGENT
from .data import LocaraConfigEntry, satellite_identifier
from .protocol import HomeRequest

_LOGGER = logging.getLogger(__name__)

PASSES_SATELLITE = "satellite_id" in inspect.signature(conversation.async_converse).parameters
"""Whether this Home Assistant tells agents which satellite spoke (newer releases than
the oldest supported, 2025.8, do); the device goes with every request either way."""

# Errors that mean "not for this agent", or that it failed: the LLM answers these.
NOT_HANDLED = {
    intent.IntentResponseErrorCode.NO_INTENT_MATCH,
    intent.IntentResponseErrorCode.NO_VALID_TARGETS,
    intent.IntentResponseErrorCode.UNKNOWN,
}

ASSIST_SATELLITE = "assist_satellite"


@callback
def area_of(
    hass: HomeAssistant, device: dr.DeviceEntry | None, area_name: str | None
) -> str | None:
    """The id of the area a satellite is in: its device's area in Home Assistant, else
    the area of the name it reported to the server."""
    if device is not None and device.area_id is not None:
        return device.area_id
    area = ar.async_get(hass).async_get_area_by_name(area_name) if area_name else None
    return area.id if area is not None else None


@callback
def home_agent(hass: HomeAssistant, entry: LocaraConfigEntry, area_id: str | None) -> str:
    """The agent chosen for home control in the area (else the default). A chosen agent
    that is gone (its integration removed) gives way to the built-in one."""
    area_agents: dict[str, str] = entry.options.get(CONF_AREA_AGENTS, {})
    default: str = entry.options.get(CONF_HOME_AGENT, HOME_ASSISTANT_AGENT)
    agent_id = area_agents.get(area_id, default) if area_id is not None else default
    if (
        agent_id != HOME_ASSISTANT_AGENT
        and conversation.async_get_agent_info(hass, agent_id) is None
    ):
        _LOGGER.warning(
            "The conversation agent %s chosen for home control is gone: Home Assistant's "
            "own agent answers instead. Choose another in the Locara integration's options",
            agent_id,
        )
        return HOME_ASSISTANT_AGENT
    return agent_id


@callback
def _assist_satellite(hass: HomeAssistant, device: dr.DeviceEntry) -> str | None:
    """The satellite's assist_satellite entity, if it has one."""
    for entity in er.async_entries_for_device(er.async_get(hass), device.id):
        if entity.domain == ASSIST_SATELLITE and entity.platform == DOMAIN:
            return entity.entity_id
    return None


async def async_ask_home_assistant(
    hass: HomeAssistant, entry: LocaraConfigEntry, request: HomeRequest
) -> tuple[bool, str | None]:
    """Whether the room's home-control agent handled the request's text, and what it said."""
    device = dr.async_get(hass).async_get_device(
        identifiers={satellite_identifier(entry.runtime_data.server_id, request.satellite)}
    )
    agent_id = home_agent(hass, entry, area_of(hass, device, request.area))
    context: dict[str, str | None] = {"device_id": device.id if device is not None else None}
    if PASSES_SATELLITE:
        context["satellite_id"] = _assist_satellite(hass, device) if device is not None else None
    try:
        result = await conversation.async_converse(
            hass,
            request.text,
            request.conversation_id,
            Context(),
            language=request.language,
            agent_id=agent_id,
            **context,
        )
    except Exception as error:  # an agent's bug must not leave the room waiting
        # The words are logged at debug only (below): logs end up in bug reports.
        _LOGGER.warning(
            "The agent %s failed on request %s: %r", agent_id, request.request_id, error,
            exc_info=not isinstance(error, HomeAssistantError | ValueError),
        )  # fmt: skip
        return False, None
    response = result.response
    speech: str | None = response.speech.get("plain", {}).get("speech")
    if response.response_type is intent.IntentResponseType.ERROR:
        if response.error_code is intent.IntentResponseErrorCode.UNKNOWN:
            _LOGGER.warning("The agent %s failed on request %s: %s",
                            agent_id, request.request_id, speech)  # fmt: skip
        if response.error_code in NOT_HANDLED:
            return False, None
    return True, speech


async def async_answer_home_request(
    hass: HomeAssistant, entry: LocaraConfigEntry, request: HomeRequest
) -> None:
    data = entry.runtime_data
    handled, speech = await async_ask_home_assistant(hass, entry, request)
    _LOGGER.debug(
        "Home request %s (%r): handled %s, %r", request.request_id, request.text, handled, speech
    )
    try:
        await data.client.answer_home(request.request_id, handled, speech)
    except CannotConnect as error:
        _LOGGER.debug("Home request %s not answered: %s", request.request_id, error)
