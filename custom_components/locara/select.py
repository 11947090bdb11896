"""Selects: each satellite's backend and persona, kept in the server's `rooms` settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .client import ServerState
from .data import LocaraConfigEntry
from .entity import LocaraSatelliteEntity, async_add_satellite_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LocaraSelectDescription(SelectEntityDescription):
    options_fn: Callable[[ServerState], list[str]]


SATELLITE_SELECTS = (
    # `key` is also the setting's name in a `rooms` entry and in the satellite's record.
    # Settings of the room: configuration entities, under the device's "Configuration".
    LocaraSelectDescription(
        key="backend",
        translation_key="backend",
        entity_category=EntityCategory.CONFIG,
        options_fn=lambda state: state.backends,
    ),
    LocaraSelectDescription(
        key="persona",
        translation_key="persona",
        entity_category=EntityCategory.CONFIG,
        options_fn=lambda state: state.personas,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_satellite_entities(
        hass,
        entry,
        async_add_entities,
        lambda name: (
            LocaraSatelliteSelect(entry, name, description) for description in SATELLITE_SELECTS
        ),
    )


class LocaraSatelliteSelect(LocaraSatelliteEntity, SelectEntity):
    """What serves the satellite now; choosing sets the satellite's own `rooms` entry."""

    entity_description: LocaraSelectDescription

    @property
    def options(self) -> list[str]:
        return self.entity_description.options_fn(self.state_data)

    @property
    def current_option(self) -> str | None:
        value = getattr(self.record, self.entity_description.key)
        return value if isinstance(value, str) else None

    async def async_select_option(self, option: str) -> None:
        # A patch of this one key, applied by the server to the rooms as they are then.
        # The other setting is not pinned: the server routes a satellite by its area's
        # entry and then its own, key by key, so a key its own entry leaves out comes from
        # the area or the defaults just as before the entry existed, and is what the
        # other select shows. Both selects changed at the same moment both count.
        await self._send(
            self.client.set_room({self.entity_description.key: option}, satellite=self.satellite)
        )
