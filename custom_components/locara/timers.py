"""Home Assistant's timers on Locara satellites.

Every satellite's device gets a timer handler, so that Home Assistant's timer intents
("set a timer for 5 minutes", "pause the timer", "how much time is left") work from a
Locara room. Each timer event goes to the server (`locara-timer`), which passes it to
the satellite, keeps it across reconnects and rings the timer in the room when it
finishes. The timers still running are sent again whenever the control connection is
back (the server may have restarted). A timer that finishes while its satellite is away
(or the server cannot be reached) is shown as a persistent notification and fired as
the event `locara_timer_missed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from homeassistant.components import persistent_notification
from homeassistant.components.intent import (
    TimerEventType,
    async_register_timer_handler,
)
from homeassistant.components.intent import (
    TimerInfo as HomeAssistantTimer,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .client import LocaraClientError
from .const import DOMAIN
from .data import LocaraConfigEntry, satellite_identifier
from .protocol import TimerInfo

_LOGGER = logging.getLogger(__name__)

EVENT_TIMER_MISSED = f"{DOMAIN}_timer_missed"


def _timer_info(timer: HomeAssistantTimer) -> TimerInfo:
    return TimerInfo(
        id=timer.id,
        seconds_left=timer.seconds_left,
        active=timer.is_active,
        name=timer.name,
        start_hours=timer.start_hours,
        start_minutes=timer.start_minutes,
        start_seconds=timer.start_seconds,
        language=timer.language,
    )


class SatelliteTimers:
    """The timer handlers of one config entry's satellites."""

    def __init__(self, hass: HomeAssistant, entry: LocaraConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self._handlers: dict[str, Callable[[], None]] = {}
        self._running: dict[str, tuple[str, HomeAssistantTimer]] = {}
        """Timers that have not finished, by id: (satellite, timer), to send again."""
        self._was_connected = entry.runtime_data.client.connected

    @callback
    def register(self, *_: object) -> None:
        """Handle the timers of every satellite whose device is there (the entity platforms
        make it, with its area) and not yet handled."""
        data = self.entry.runtime_data
        devices = dr.async_get(self.hass)
        for satellite in data.satellites - set(self._handlers):
            identifier = satellite_identifier(data.server_id, satellite)
            device = devices.async_get_device(identifiers={identifier})
            if device is None:
                continue  # not yet: registered when the device registry says it is there

            @callback
            def handle(
                change: TimerEventType, timer: HomeAssistantTimer, satellite: str = satellite
            ) -> None:
                self._handle(satellite, change, timer)

            self._handlers[satellite] = async_register_timer_handler(self.hass, device.id, handle)

    @callback
    def _handle(self, satellite: str, change: TimerEventType, timer: HomeAssistantTimer) -> None:
        if change in (TimerEventType.STARTED, TimerEventType.UPDATED):
            self._running[timer.id] = (satellite, timer)
        else:
            self._running.pop(timer.id, None)
        self._send_soon(satellite, change, timer)

    @callback
    def _send_soon(self, satellite: str, change: TimerEventType, timer: HomeAssistantTimer) -> None:
        self.entry.async_create_background_task(
            self.hass,
            self._send(satellite, change, timer),
            f"{DOMAIN} timer {timer.id} {change.value}",
        )

    async def _send(
        self, satellite: str, change: TimerEventType, timer: HomeAssistantTimer
    ) -> None:
        info = _timer_info(timer)
        client = self.entry.runtime_data.client
        try:
            delivered = await client.timer(satellite, change.value, info)
        except LocaraClientError as error:
            _LOGGER.warning("Timer %s of %s not passed on to the Locara server: %s",
                            timer.id, satellite, error)  # fmt: skip
            delivered = False
        if change is TimerEventType.FINISHED and not delivered:
            self._missed(satellite, timer)

    @callback
    def _missed(self, satellite: str, timer: HomeAssistantTimer) -> None:
        """Say where people see it that a timer finished unheard."""
        what = f"The {timer.name} timer" if timer.name else "A timer"
        persistent_notification.async_create(
            self.hass,
            f"{what} on {satellite} finished while {satellite} was not connected. It "
            "rings there when it is back (within the server's `timers.missed_ring_s`).",
            title="Locara timer finished",
            notification_id=f"{DOMAIN}_timer_{timer.id}",
        )
        self.hass.bus.async_fire(
            EVENT_TIMER_MISSED,
            {"satellite": satellite, "timer_id": timer.id, "name": timer.name},
        )

    @callback
    def connection_changed(self) -> None:
        """The control connection is back: the server gets the running timers again."""
        connected = self.entry.runtime_data.client.connected
        if connected and not self._was_connected:
            for satellite, timer in self._running.values():
                self._send_soon(satellite, TimerEventType.STARTED, timer)
        self._was_connected = connected

    @callback
    def close(self) -> None:
        for unregister in self._handlers.values():
            unregister()
        self._handlers.clear()


@callback
def async_setup_timers(hass: HomeAssistant, entry: LocaraConfigEntry) -> None:
    """Timer handlers for the entry's satellites, those known and those that come.

    Needs Home Assistant's `intent` integration (every installation with Assist has it,
    through `default_config` or `assist_pipeline`); without it there are no timers."""
    if "intent" not in hass.config.components:
        _LOGGER.info("Home Assistant's intent integration is not loaded: no timers")
        return
    timers = SatelliteTimers(hass, entry)
    timers.register()
    entry.async_on_unload(timers.close)
    entry.async_on_unload(hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, timers.register))
    entry.async_on_unload(entry.runtime_data.client.add_listener(timers.connection_changed))
