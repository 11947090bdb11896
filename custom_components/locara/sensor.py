"""Sensors: the server's sessions, latency and backend health; each satellite's state and words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .const import SATELLITE_STATES
from .data import LocaraConfigEntry
from .entity import LocaraEntity, LocaraSatelliteEntity, async_add_satellite_entities
from .protocol import SatelliteRecord, ServerStatus

PARALLEL_UPDATES = 0

MAX_STATE_LENGTH = 255  # Home Assistant's limit for a state


Record = TypeVar("Record", ServerStatus, SatelliteRecord)


def unhealthy_backends(server: ServerStatus) -> list[str]:
    return sorted(name for name, health in server.backends.items() if not health.healthy)


def _text(value: str | None) -> str | None:
    return value[:MAX_STATE_LENGTH] if value is not None else None


@dataclass(frozen=True, kw_only=True)
class LocaraSensorDescription(SensorEntityDescription, Generic[Record]):
    # From the server's record (`locara-server`) or the satellite's (`locara-satellite`).
    value_fn: Callable[[Record], StateType]
    attributes_fn: Callable[[Record], dict[str, Any]] | None = None


SERVER_SENSORS: tuple[LocaraSensorDescription[ServerStatus], ...] = (
    LocaraSensorDescription(
        key="sessions_active",
        translation_key="sessions_active",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda server: server.sessions_active,
    ),
    LocaraSensorDescription(
        key="last_latency",
        translation_key="last_latency",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda server: server.last_v2v_ms,
    ),
    LocaraSensorDescription(
        key="backend_health",
        translation_key="backend_health",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.ENUM,
        options=["ok", "degraded"],
        value_fn=lambda server: "degraded" if unhealthy_backends(server) else "ok",
        attributes_fn=lambda server: {"unhealthy_backends": unhealthy_backends(server)},
    ),
)

SATELLITE_SENSORS: tuple[LocaraSensorDescription[SatelliteRecord], ...] = (
    LocaraSensorDescription(
        key="state",
        translation_key="state",
        device_class=SensorDeviceClass.ENUM,
        options=SATELLITE_STATES,
        value_fn=lambda satellite: satellite.state,
    ),
    # Off until a user turns it on: its every state (what was said in the room) would go
    # into the recorder's history.
    LocaraSensorDescription(
        key="last_transcript",
        translation_key="last_transcript",
        entity_registry_enabled_default=False,
        value_fn=lambda satellite: _text(satellite.last_transcript),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_entities(LocaraServerSensor(entry, description) for description in SERVER_SENSORS)

    async_add_satellite_entities(
        hass,
        entry,
        async_add_entities,
        lambda name: (
            LocaraSatelliteSensor(entry, name, description) for description in SATELLITE_SENSORS
        ),
    )


class LocaraServerSensor(LocaraEntity, SensorEntity):
    entity_description: LocaraSensorDescription[ServerStatus]

    @property
    def native_value(self) -> StateType:
        return self.entity_description.value_fn(self.state_data.server)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self.state_data.server) if attributes_fn else None


class LocaraSatelliteSensor(LocaraSatelliteEntity, SensorEntity):
    entity_description: LocaraSensorDescription[SatelliteRecord]

    @property
    def native_value(self) -> StateType:
        return self.entity_description.value_fn(self.record)
