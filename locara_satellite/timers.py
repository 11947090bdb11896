"""The satellite's side of Home Assistant's timers: the server's timer events, followed.

The server keeps the timers and rings them (locara_wyoming/timers/). Here each
`timer-started`, `-updated` and `-cancelled` is logged, and a `timer-finished` (one per
round of ringing) plays the timer sound and opens the conversation, so that "stop" is
heard without the wake word; a `timer-cancelled` after it (someone said "stop", or the
ringing reached its limit) silences the sound at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from wyoming.event import Event
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated

_LOGGER = logging.getLogger(__name__)

TIMER_TYPES = frozenset({"timer-started", "timer-updated", "timer-cancelled", "timer-finished"})


def _duration(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class RoomTimers:
    def __init__(
        self,
        ring: Callable[[str], None],
        silence: Callable[[str], object],
        open_conversation: Callable[[str], None],
    ) -> None:
        """`ring(sound_id)` plays the timer sound under that id, `silence(sound_id)` stops
        it; `open_conversation(reason)` opens the microphone to the server."""
        self._ring = ring
        self._silence = silence
        self._open_conversation = open_conversation
        self.names: dict[str, str] = {}
        """The timers running or ringing, by id: how the log names them."""
        self._rings = 0
        self._ringing: dict[str, str] = {}
        """The sound playing for each ringing timer, by timer id."""

    def handle(self, event: Event) -> None:
        """One of TIMER_TYPES from the server."""
        if TimerStarted.is_type(event.type):
            started = TimerStarted.from_event(event)
            self.names[started.id] = started.name or started.id
            _LOGGER.info("Timer %s: %s left", self.names[started.id],
                         _duration(started.total_seconds))  # fmt: skip
        elif TimerUpdated.is_type(event.type):
            updated = TimerUpdated.from_event(event)
            _LOGGER.info("Timer %s: %s, %s left", self.names.get(updated.id, updated.id),
                         "running" if updated.is_active else "paused",
                         _duration(updated.total_seconds))  # fmt: skip
        elif TimerFinished.is_type(event.type):
            timer_id = TimerFinished.from_event(event).id
            _LOGGER.info("Timer %s finished: ringing", self.names.get(timer_id, timer_id))
            self._rings += 1
            sound_id = self._ringing[timer_id] = f"timer-{self._rings}"
            self._ring(sound_id)
            self._open_conversation("a timer rings")
        elif TimerCancelled.is_type(event.type):
            timer_id = TimerCancelled.from_event(event).id
            name = self.names.pop(timer_id, timer_id)
            playing = self._ringing.pop(timer_id, None)
            if playing is not None:
                self._silence(playing)
                _LOGGER.info("Timer %s stopped ringing", name)
            else:
                _LOGGER.info("Timer %s cancelled", name)
