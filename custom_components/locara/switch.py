"""Switches: each satellite's mute, kept in the server's `muted` setting."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import LocaraConfigEntry
from .entity import LocaraSatelliteEntity, async_add_satellite_entities

PARALLEL_UPDATES = 0

MUTE = SwitchEntityDescription(
    key="mute", translation_key="mute", entity_category=EntityCategory.CONFIG
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_satellite_entities(
        hass, entry, async_add_entities, lambda name: [LocaraMuteSwitch(entry, name, MUTE)]
    )


class LocaraMuteSwitch(LocaraSatelliteEntity, SwitchEntity):
    """On: the server drops the satellite's microphone audio (its session stays open)."""

    @property
    def is_on(self) -> bool:
        return self.record.muted

    # A patch of this one satellite, applied by the server to the list as it is then: two
    # switches turned at the same moment both count.
    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._send(self.client.set_muted(self.satellite, True))

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._send(self.client.set_muted(self.satellite, False))
