"""Actions: `locara.announce` and `locara.start_conversation` on satellites or areas."""

from __future__ import annotations

import asyncio
from functools import partial

import voluptuous as vol
from homeassistant.const import ATTR_AREA_ID, ATTR_CONFIG_ENTRY_ID, ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr

from .client import LocaraClientError, RequestRefused
from .const import DOMAIN
from .data import LocaraConfigEntry, satellite_identifier, satellite_of
from .protocol import SatelliteRecord

ATTR_MESSAGE = "message"
SERVICE_ANNOUNCE = "announce"
SERVICE_START_CONVERSATION = "start_conversation"

ANNOUNCE_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Required(ATTR_MESSAGE): vol.All(cv.string, vol.Length(min=1)),
            vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
            vol.Optional(ATTR_AREA_ID): vol.All(cv.ensure_list, [cv.string]),
            vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        }
    ),
    cv.has_at_least_one_key(ATTR_DEVICE_ID, ATTR_AREA_ID),
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    for service, listen in ((SERVICE_ANNOUNCE, False), (SERVICE_START_CONVERSATION, True)):
        hass.services.async_register(
            DOMAIN, service, partial(_async_announce, hass, listen=listen), ANNOUNCE_SCHEMA
        )


def _loaded_entries(hass: HomeAssistant, call: ServiceCall) -> list[LocaraConfigEntry]:
    entries: list[LocaraConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if (entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID)) is not None:
        entries = [entry for entry in entries if entry.entry_id == entry_id]
        if not entries:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_loaded",
                translation_placeholders={"entry_id": entry_id},
            )
    return entries


def _targets(hass: HomeAssistant, call: ServiceCall) -> list[tuple[LocaraConfigEntry, str]]:
    """(entry, satellite name) for each satellite the call names, directly or by area."""
    entries = _loaded_entries(hass, call)
    devices = dr.async_get(hass)
    targets: dict[tuple[str, str], tuple[LocaraConfigEntry, str]] = {}
    for device_id in call.data.get(ATTR_DEVICE_ID, []):
        device = devices.async_get(device_id)
        found = [
            (entry, name)
            for entry in entries
            if device is not None
            and (name := satellite_of(device, entry.runtime_data.server_id)) is not None
        ]
        if not found:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_satellite",
                translation_placeholders={"device": (device and device.name) or device_id},
            )
        targets.update({(entry.entry_id, name): (entry, name) for entry, name in found})
    areas = ar.async_get(hass)
    for area_id in call.data.get(ATTR_AREA_ID, []):
        in_area = [
            (entry, name)
            for entry in entries
            for name, record in _satellites(entry).items()
            if record.connected
            and (
                device := devices.async_get_device(
                    {satellite_identifier(entry.runtime_data.server_id, name)}
                )
            )
            and device.area_id == area_id
        ]
        if not in_area:
            area = areas.async_get_area(area_id)
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_satellite_in_area",
                translation_placeholders={"area": area.name if area else area_id},
            )
        targets.update({(entry.entry_id, name): (entry, name) for entry, name in in_area})
    return list(targets.values())


def _satellites(entry: LocaraConfigEntry) -> dict[str, SatelliteRecord]:
    state = entry.runtime_data.client.state
    return state.satellites if state is not None else {}


async def _async_announce(hass: HomeAssistant, call: ServiceCall, *, listen: bool) -> None:
    targets = _targets(hass, call)
    message: str = call.data[ATTR_MESSAGE]
    results = await asyncio.gather(
        *(
            entry.runtime_data.client.announce(message, satellite=name, listen=listen)
            for entry, name in targets
        ),
        return_exceptions=True,
    )
    for (_, name), result in zip(targets, results, strict=True):
        if isinstance(result, RequestRefused) and result.code == "not-found":
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="satellite_not_connected",
                translation_placeholders={"satellite": name},
            ) from result
        if isinstance(result, LocaraClientError):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="request_failed",
                translation_placeholders={"error": str(result)},
            ) from result
        if isinstance(result, BaseException):
            raise result
