"""The Locara integration: a Locara Wyoming server's rooms, settings and home control.

Home Assistant's built-in Wyoming integration uses the same server for speech-to-text,
text-to-speech and a conversation agent; this one holds the server's control channel.
"""

from __future__ import annotations

import logging

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.typing import ConfigType

from .client import CannotConnect, InvalidAuth
from .const import DOMAIN, signal_new_satellite
from .data import (
    LocaraConfigEntry,
    LocaraData,
    client_of,
    pin_of,
    satellite_of,
    server_identifier,
)
from .home_control import async_answer_home_request
from .protocol import HomeRequest
from .services import async_setup_services
from .timers import async_setup_timers

_LOGGER = logging.getLogger(__name__)

PLATFORMS = [
    Platform.ASSIST_SATELLITE,
    Platform.CONVERSATION,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: LocaraConfigEntry) -> bool:
    client = client_of(entry)
    try:
        state = await client.connect()
    except InvalidAuth as error:
        raise ConfigEntryAuthFailed(str(error)) from error
    except CannotConnect as error:
        raise ConfigEntryNotReady(str(error)) from error
    entry.async_on_unload(client.close)
    entry.runtime_data = LocaraData(client, state.server_id, set(state.satellites))

    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={server_identifier(state.server_id)},
        name=state.name,
        manufacturer="Locara",
        model="Locara server",
        sw_version=state.server.version,
    )

    @callback
    def home_request(request: HomeRequest) -> None:
        entry.async_create_background_task(
            hass,
            async_answer_home_request(hass, entry, request),
            f"{DOMAIN} home request {request.request_id}",
        )

    client.on_home_request = home_request
    _keep_pin(hass, entry)
    entry.async_on_unload(client.add_listener(lambda: _keep_pin(hass, entry)))
    entry.async_on_unload(client.add_listener(lambda: _add_new_satellites(hass, entry)))
    async_setup_timers(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_create_background_task(
        hass, _keep_connected(hass, entry), f"{DOMAIN} control connection {entry.title}"
    )
    return True


async def _keep_connected(hass: HomeAssistant, entry: LocaraConfigEntry) -> None:
    try:
        await entry.runtime_data.client.run()
    except InvalidAuth as error:
        _LOGGER.error("Cannot reconnect to the Locara server %s: %s", entry.title, error)
        entry.async_start_reauth(hass)


@callback
def _keep_pin(hass: HomeAssistant, entry: LocaraConfigEntry) -> None:
    """Keep the server's id and certificate as it last proved itself in the entry (a
    change of certificate is logged by the client)."""
    client = entry.runtime_data.client
    if client.connected:
        hass.config_entries.async_update_entry(entry, data={**entry.data, **pin_of(client)})


@callback
def _add_new_satellites(hass: HomeAssistant, entry: LocaraConfigEntry) -> None:
    """Give a satellite that connects for the first time its device and entities."""
    data = entry.runtime_data
    state = data.client.state
    assert state is not None
    for name, record in state.satellites.items():
        if name not in data.satellites and record.connected:
            data.satellites.add(name)
            async_dispatcher_send(hass, signal_new_satellite(entry.entry_id), name)


async def async_unload_entry(hass: HomeAssistant, entry: LocaraConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: LocaraConfigEntry, device: dr.DeviceEntry
) -> bool:
    """A satellite's device may be deleted while it is away; it comes back when it connects."""
    name = satellite_of(device, entry.unique_id or "")
    if name is None:
        return False  # the server itself
    if entry.state is ConfigEntryState.LOADED:
        data = entry.runtime_data
        state = data.client.state
        record = state.satellites.get(name) if state is not None else None
        if record is not None and record.connected:
            return False
        data.satellites.discard(name)
    return True
