"""What a loaded config entry keeps: its control connection and the satellites it shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from homeassistant.config_entries import ConfigEntry
from homeassistant.helpers.device_registry import DeviceEntry

from .client import LocaraClient
from .const import DOMAIN


@dataclass
class LocaraData:
    client: LocaraClient
    server_id: str
    # Satellites that have their device and entities in Home Assistant.
    satellites: set[str] = field(default_factory=set)


LocaraConfigEntry: TypeAlias = ConfigEntry[LocaraData]


def server_identifier(server_id: str) -> tuple[str, str]:
    return (DOMAIN, server_id)


def satellite_identifier(server_id: str, satellite: str) -> tuple[str, str]:
    return (DOMAIN, f"{server_id}:{satellite}")


def satellite_of(device: DeviceEntry, server_id: str) -> str | None:
    """The name of the server's satellite that `device` is, or None."""
    prefix = f"{server_id}:"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            return identifier.removeprefix(prefix)
    return None
