"""Switches: each satellite's mute, kept in the server's `muted` setting."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import signal_new_satellite
from .data import LocaraConfigEntry
from .entity import LocaraSatelliteEntity

PARALLEL_UPDATES = 0

MUTE = SwitchEntityDescription(
    key="mute", translation_key="mute", entity_category=EntityCategory.CONFIG
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    @callback
    def add_satellite(name: str) -> None:
        async_add_entities([LocaraMuteSwitch(entry, name, MUTE)])

    for name in sorted(entry.runtime_data.satellites):
        add_satellite(name)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_satellite(entry.entry_id), add_satellite)
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
