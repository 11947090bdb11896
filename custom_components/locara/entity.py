"""Locara entities: the server's, and each satellite's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .client import LocaraClient, LocaraClientError, ServerState
from .const import DOMAIN, signal_new_satellite
from .data import LocaraConfigEntry, satellite_identifier, server_identifier
from .protocol import SatelliteRecord


class LocaraEntity(Entity):
    """An entity of the server's device, up to date with every push."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: LocaraConfigEntry, description: EntityDescription) -> None:
        self.entity_description = description
        self.client: LocaraClient = entry.runtime_data.client
        self.server_id = entry.runtime_data.server_id
        self._attr_unique_id = f"{self.server_id}-{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={server_identifier(self.server_id)})

    @property
    def state_data(self) -> ServerState:
        assert self.client.state is not None
        return self.client.state

    @property
    def available(self) -> bool:
        return self.client.connected

    async def async_added_to_hass(self) -> None:
        self.async_on_remove(self.client.add_listener(self._pushed))

    @callback
    def _pushed(self) -> None:
        """The server's state or the connection changed."""
        self.async_write_ha_state()

    async def _send(self, request: Awaitable[object]) -> None:
        """Wait for a request to the server; its failure as Home Assistant's error."""
        try:
            await request
        except LocaraClientError as error:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="request_failed",
                translation_placeholders={"error": str(error)},
            ) from error


class LocaraSatelliteEntity(LocaraEntity):
    """An entity of a satellite's device; unavailable while the satellite is away."""

    def __init__(
        self, entry: LocaraConfigEntry, satellite: str, description: EntityDescription
    ) -> None:
        super().__init__(entry, description)
        self.satellite = satellite
        self._attr_unique_id = f"{self.server_id}:{satellite}-{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={satellite_identifier(self.server_id, satellite)},
            name=satellite,
            manufacturer="Locara",
            model="Locara satellite",
            suggested_area=self.record.area,
            via_device=server_identifier(self.server_id),
        )

    @property
    def record(self) -> SatelliteRecord:
        """The satellite as the server last reported it (not yet: as one never connected)."""
        return self.state_data.satellites.get(self.satellite) or SatelliteRecord(self.satellite)

    @property
    def available(self) -> bool:
        return super().available and self.record.connected


@callback
def async_add_satellite_entities(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_of: Callable[[str], Iterable[Entity]],
) -> None:
    """A platform's entities for each satellite: those known now, and a new satellite's
    when it first connects (`__init__._add_new_satellites`)."""

    @callback
    def add_satellite(name: str) -> None:
        async_add_entities(entities_of(name))

    for name in sorted(entry.runtime_data.satellites):
        add_satellite(name)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_satellite(entry.entry_id), add_satellite)
    )
