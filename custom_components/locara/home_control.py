"""Home control: the server asks before its LLM answers, Home Assistant's own agent answers.

A satellite's words come as `locara-home-request`. Home Assistant's built-in agent gets
them as if they had been said to the satellite's device (so "turn on the lights" means
the lights of the device's area). What it does not understand, or finds nothing to act
on, is answered `handled: false`, and the server's LLM answers instead.
"""

from __future__ import annotations

import logging

from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import intent

from .client import CannotConnect
from .const import HOME_ASSISTANT_AGENT
from .data import LocaraConfigEntry, satellite_identifier
from .protocol import HomeRequest

_LOGGER = logging.getLogger(__name__)

# Errors that mean "not for Home Assistant": the LLM answers these.
NOT_HANDLED = {
    intent.IntentResponseErrorCode.NO_INTENT_MATCH,
    intent.IntentResponseErrorCode.NO_VALID_TARGETS,
}


async def async_ask_home_assistant(
    hass: HomeAssistant, server_id: str, request: HomeRequest
) -> tuple[bool, str | None]:
    """Whether Home Assistant's agent handled the request's text, and what it said."""
    device = dr.async_get(hass).async_get_device(
        identifiers={satellite_identifier(server_id, request.satellite)}
    )
    try:
        result = await conversation.async_converse(
            hass,
            request.text,
            request.conversation_id,
            Context(),
            language=request.language,
            agent_id=HOME_ASSISTANT_AGENT,
            device_id=device.id if device is not None else None,
        )
    except (HomeAssistantError, ValueError) as error:
        # The words are logged at debug only (below): logs end up in bug reports.
        _LOGGER.warning(
            "Home Assistant's agent failed on request %s: %s", request.request_id, error
        )
        return False, None
    response = result.response
    if (
        response.response_type is intent.IntentResponseType.ERROR
        and response.error_code in NOT_HANDLED
    ):
        return False, None
    speech: str | None = response.speech.get("plain", {}).get("speech")
    return True, speech


async def async_answer_home_request(
    hass: HomeAssistant, entry: LocaraConfigEntry, request: HomeRequest
) -> None:
    data = entry.runtime_data
    handled, speech = await async_ask_home_assistant(hass, data.server_id, request)
    _LOGGER.debug(
        "Home request %s (%r): handled %s, %r", request.request_id, request.text, handled, speech
    )
    try:
        await data.client.answer_home(request.request_id, handled, speech)
    except CannotConnect as error:
        _LOGGER.debug("Home request %s not answered: %s", request.request_id, error)
