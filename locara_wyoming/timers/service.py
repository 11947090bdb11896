"""Home Assistant's timer events, followed for each satellite: passed on to its session,
kept for when it reconnects, and rung in the room when they finish.

A satellite's session gets the standard Wyoming timer events (`timer-started`,
`timer-updated`, `timer-cancelled`, `timer-finished`). When its session opens (a
reconnect too) it gets `timer-started` again for each timer still running (with the
seconds left then; `timer-updated` follows for a paused one), and a timer that finished
while it was away rings then, if it finished within `timers.missed_ring_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from wyoming.event import Event
from wyoming.timer import TimerCancelled, TimerStarted, TimerUpdated

from ..config import LocaraConfig
from ..protocol.control import TimerEvent, TimerInfo
from ..sessions.link import SatelliteGoneError, SessionLink
from ..sessions.registry import SessionChange, SessionRegistry
from .book import TimerBook
from .ringing import RingEnd, Ringing, Speak

_LOGGER = logging.getLogger(__name__)


def _started(timer: TimerInfo) -> Event:
    return TimerStarted(
        id=timer.id, total_seconds=timer.seconds_left, name=timer.name,
        start_hours=timer.start_hours, start_minutes=timer.start_minutes,
        start_seconds=timer.start_seconds,
    ).event()  # fmt: skip


def _updated(timer: TimerInfo) -> Event:
    return TimerUpdated(
        id=timer.id, is_active=timer.active, total_seconds=timer.seconds_left
    ).event()


class TimerService:
    def __init__(
        self,
        sessions: SessionRegistry,
        config: Callable[[], LocaraConfig],
        speak: Speak,
    ) -> None:
        self.book = TimerBook()
        self._sessions = sessions
        self._config = config
        self._speak = speak
        self._ringing: dict[tuple[str, str], Ringing] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        sessions.add_listener(self._session_changed)

    def _link(self, satellite: str) -> SessionLink | None:
        links = self._sessions.find(satellite)
        return links[0] if links else None

    async def handle(self, request: TimerEvent) -> bool:
        """Follow one of Home Assistant's timer events; whether the satellite has it now."""
        satellite, timer = request.satellite, request.timer
        link = self._link(satellite)
        match request.change:
            case "started" | "updated":
                self.book.keep(satellite, timer)
                events = [_started(timer)] if request.change == "started" else [_updated(timer)]
            case "cancelled":
                self.book.drop(satellite, timer.id)
                ringing = self._ringing.get((satellite, timer.id))
                if ringing is not None:
                    await ringing.stop()
                events = [TimerCancelled(id=timer.id).event()]
            case _:  # finished
                kept = self.book.finish(satellite, timer)
                if link is None:
                    _LOGGER.info("Timer %s finished while %s is away", timer.id, satellite)
                    return False
                self._ring(link, kept.info)
                return True
        if link is None:
            return False
        try:
            for event in events:
                await link.tell(event)
        except SatelliteGoneError:
            return False
        return True

    def _ring(self, link: SessionLink, timer: TimerInfo) -> None:
        key = (link.satellite, timer.id)
        if key in self._ringing:
            return
        timers = self._config().timers
        self._ringing[key] = Ringing(
            link, timer, self._speak, timers.ring_interval_s, timers.ring_limit_s, self._rung
        )

    def _rung(self, ringing: Ringing, end: RingEnd) -> None:
        satellite, timer_id = ringing.link.satellite, ringing.timer.id
        if self._ringing.get((satellite, timer_id)) is ringing:
            del self._ringing[(satellite, timer_id)]
        if end is not RingEnd.GONE:
            self.book.drop(satellite, timer_id)

    # -- a satellite that comes and goes ---------------------------------------------

    def _session_changed(self, link: SessionLink, change: SessionChange) -> None:
        if not link.owner.enrolled:
            return
        if change is SessionChange.OPENED:
            self._start(self._catch_up(link))
        elif change is SessionChange.CLOSED:
            # Out of the way at once: a session that takes over rings these again.
            for key, ringing in list(self._ringing.items()):
                if ringing.link is link:
                    del self._ringing[key]
                    self._start(ringing.stop(RingEnd.GONE))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up(self, link: SessionLink) -> None:
        """A session opened: its satellite's running timers, and those it missed."""
        satellite = link.satellite
        try:
            for timer in self.book.running(satellite):
                await link.tell(_started(timer))
                if not timer.active:
                    await link.tell(_updated(timer))
        except SatelliteGoneError:
            return
        for timer in self.book.finished(satellite, self._config().timers.missed_ring_s):
            _LOGGER.info("%s is back: ringing timer %s, which finished meanwhile", satellite,
                         timer.id)  # fmt: skip
            self._ring(link, timer)

    async def close(self) -> None:
        for ringing in list(self._ringing.values()):
            await ringing.stop(RingEnd.GONE)
            await ringing.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
