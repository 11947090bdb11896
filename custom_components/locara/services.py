"""Actions: `locara.announce` and `locara.start_conversation` on satellites or areas;
`locara.add_satellite` and `locara.remove_satellite` enrol satellites (admins only: an
enrolled satellite gets home control)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial
from typing import TypeVar

import voluptuous as vol
from homeassistant.const import ATTR_AREA_ID, ATTR_DEVICE_ID, ATTR_NAME
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service import async_register_admin_service

from .client import LocaraClientError, RequestRefused
from .const import ATTR_CONFIG_ENTRY_ID, DOMAIN
from .data import LocaraConfigEntry, satellite_identifier, satellite_of
from .protocol import SatelliteRecord

ATTR_MESSAGE = "message"
SERVICE_ANNOUNCE = "announce"
SERVICE_START_CONVERSATION = "start_conversation"
SERVICE_ADD_SATELLITE = "add_satellite"
SERVICE_REMOVE_SATELLITE = "remove_satellite"

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
SATELLITE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_NAME): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)
Answer = TypeVar("Answer")


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    for service, listen in ((SERVICE_ANNOUNCE, False), (SERVICE_START_CONVERSATION, True)):
        hass.services.async_register(
            DOMAIN, service, partial(_async_announce, hass, listen=listen), ANNOUNCE_SCHEMA
        )
    add = partial(_async_add_satellite, hass)
    remove = partial(_async_remove_satellite, hass)
    async_register_admin_service(
        hass, DOMAIN, SERVICE_ADD_SATELLITE, add, SATELLITE_SCHEMA, SupportsResponse.ONLY
    )
    async_register_admin_service(
        hass, DOMAIN, SERVICE_REMOVE_SATELLITE, remove, SATELLITE_SCHEMA, SupportsResponse.OPTIONAL
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
            raise _request_failed(result) from result
        if isinstance(result, BaseException):
            raise result


def _server(hass: HomeAssistant, call: ServiceCall) -> LocaraConfigEntry:
    """The one server the call is for: the only one loaded, or the one it names."""
    entries = _loaded_entries(hass, call)
    if not entries:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_server")
    if len(entries) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="choose_server")
    return entries[0]


async def _enrolment(request: Awaitable[Answer], name: str) -> Answer:
    """The server's answer to an enrolment request; its refusal as an error that says why."""
    try:
        return await request
    except LocaraClientError as error:
        code = error.code if isinstance(error, RequestRefused) else None
        if code == "not-found":
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="satellite_not_enrolled",
                translation_placeholders={"satellite": name},
            ) from error
        if code in ("bad-request", "bad-event"):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="satellite_refused",
                translation_placeholders={"error": str(error)},
            ) from error
        raise _request_failed(error) from error


def _request_failed(error: LocaraClientError) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="request_failed",
        translation_placeholders={"error": str(error)},
    )


async def _async_add_satellite(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """Enrol a satellite; its pairing code, which holds its key: shown once, kept nowhere."""
    name: str = call.data[ATTR_NAME]
    client = _server(hass, call).runtime_data.client
    done = await _enrolment(client.enrol(name), name)
    return {"name": done.name, "pairing_code": done.pairing_code}


async def _async_remove_satellite(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """Remove a satellite's enrolment; the server ends its live session at once."""
    name: str = call.data[ATTR_NAME]
    client = _server(hass, call).runtime_data.client
    done = await _enrolment(client.unenrol(name), name)
    return {"name": done.name, "ended_session": done.ended_session}
