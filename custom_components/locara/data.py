"""What a loaded config entry keeps (its control connection and the satellites it shows),
and the entry's data as the client's address, token and pinned server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.helpers.device_registry import DeviceEntry

from .client import LocaraClient
from .const import CONF_FINGERPRINT, CONF_SERVER_ID, DOMAIN


@dataclass
class LocaraData:
    client: LocaraClient
    server_id: str
    # Satellites that have their device and entities in Home Assistant.
    satellites: set[str] = field(default_factory=set)


LocaraConfigEntry: TypeAlias = ConfigEntry[LocaraData]


def client_of(entry: ConfigEntry) -> LocaraClient:
    """A client for the entry's server, which must prove itself under the pinned id (for
    an entry that has not connected since it was added, under the entry's unique id:
    the server's id)."""
    data = entry.data
    return LocaraClient(
        data[CONF_HOST],
        data[CONF_PORT],
        data[CONF_TOKEN],
        server_id=data.get(CONF_SERVER_ID, entry.unique_id),
        fingerprint=data.get(CONF_FINGERPRINT),
    )


def pin_of(client: LocaraClient) -> dict[str, str]:
    """What the entry keeps of a connected client's server: the pin for the next time."""
    assert client.server_id is not None and client.fingerprint is not None, "not proven yet"
    return {CONF_SERVER_ID: client.server_id, CONF_FINGERPRINT: client.fingerprint}


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
