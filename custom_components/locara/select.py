"""Selects: each satellite's backend and persona, kept in the server's `rooms` settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .client import ServerState, with_room
from .const import signal_new_satellite
from .data import LocaraConfigEntry
from .entity import LocaraSatelliteEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LocaraSelectDescription(SelectEntityDescription):
    options_fn: Callable[[ServerState], list[str]]


SATELLITE_SELECTS = (
    # `key` is also the setting's name in a `rooms` entry and in the satellite's record.
    LocaraSelectDescription(
        key="backend", translation_key="backend", options_fn=lambda state: state.backends
    ),
    LocaraSelectDescription(
        key="persona", translation_key="persona", options_fn=lambda state: state.personas
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    @callback
    def add_satellite(name: str) -> None:
        async_add_entities(
            LocaraSatelliteSelect(entry, name, description) for description in SATELLITE_SELECTS
        )

    for name in sorted(entry.runtime_data.satellites):
        add_satellite(name)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_satellite(entry.entry_id), add_satellite)
    )


class LocaraSatelliteSelect(LocaraSatelliteEntity, SelectEntity):
    """What serves the satellite now; choosing sets the satellite's own `rooms` entry."""

    entity_description: LocaraSelectDescription

    @property
    def options(self) -> list[str]:
        return self.entity_description.options_fn(self.state_data)

    @property
    def current_option(self) -> str | None:
        value = self.record.get(self.entity_description.key)
        return value if isinstance(value, str) else None

    async def async_select_option(self, option: str) -> None:
        rooms: list[dict[str, Any]] = self.state_data.settings.get("rooms", [])
        changes: dict[str, str | None] = {self.entity_description.key: option}
        if not any(room.get("satellite") == self.satellite for room in rooms):
            # A satellite's own entry wins over its area's, and what it leaves unset falls
            # back to the defaults: pin the other setting as it is now.
            for description in SATELLITE_SELECTS:
                changes.setdefault(description.key, self.record.get(description.key))
        await self._change_settings(
            {"rooms": with_room(rooms, "satellite", self.satellite, **changes)}
        )
