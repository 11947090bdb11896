"""Diagnostics: the entry and the server's state as last pushed, without secrets or
what people said: they end up in bug reports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY, CONF_TOKEN
from homeassistant.core import HomeAssistant

from .data import LocaraConfigEntry

TO_REDACT = {
    CONF_TOKEN,
    CONF_API_KEY,
    # A satellite's record: the user's last words there and the reply.
    "last_transcript",
    "last_reply",
    # A persona's texts, written by the household (names, habits).
    "system_prompt",
    "greeting",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: LocaraConfigEntry
) -> dict[str, Any]:
    client = entry.runtime_data.client
    state = asdict(client.state) if client.state is not None else None
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "connected": client.connected,
        "state": async_redact_data(state, TO_REDACT) if state is not None else None,
        "satellites_with_entities": sorted(entry.runtime_data.satellites),
    }
