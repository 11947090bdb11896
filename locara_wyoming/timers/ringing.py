"""A finished timer ringing in its room, round after round, until someone says "stop".

Each round the satellite gets `timer-finished` (it plays its own timer sound and opens
its microphone, so that "stop" needs no wake word), then the room's persona says which
timer it was; the next round follows `interval_s` after the words have played. The
ringing ends when the user says "stop" (the session's words reach `SessionLink.hush`,
which calls `stop`), when `limit_s` has passed, or when the satellite goes (then it
rings again when the satellite is back). An ending other than the satellite's going is
told to the satellite with `timer-cancelled`, which silences its sound.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable

from wyoming.timer import TimerCancelled, TimerFinished

from ..protocol.control import TimerInfo
from ..sessions.link import SatelliteGoneError, SessionLink

_LOGGER = logging.getLogger(__name__)

Speak = Callable[[SessionLink, str], Awaitable[object]]
"""Say a text in the room in its persona's voice, returning once it has played."""


class RingEnd(enum.Enum):
    STOPPED = "stopped"
    """Someone said "stop" (or Home Assistant cancelled the timer)."""
    LIMIT = "limit"
    GONE = "gone"
    """The satellite went; it rings again when the satellite is back."""


def spoken_name(timer: TimerInfo) -> str:
    """ "5 minute pasta timer", "1 hour 30 minute timer", "timer"."""
    parts = [
        f"{count} {unit}"
        for count, unit in (
            (timer.start_hours, "hour"),
            (timer.start_minutes, "minute"),
            (timer.start_seconds, "second"),
        )
        if count
    ]
    return " ".join([*parts, *([timer.name] if timer.name else []), "timer"])


def done_text(timer: TimerInfo) -> str:
    return f"Your {spoken_name(timer)} is done."


class Ringing:
    def __init__(
        self,
        link: SessionLink,
        timer: TimerInfo,
        speak: Speak,
        interval_s: float,
        limit_s: float,
        on_end: Callable[[Ringing, RingEnd], None],
    ) -> None:
        self.link = link
        self.timer = timer
        self._speak = speak
        self._interval_s = interval_s
        self._limit_s = limit_s
        self._on_end = on_end
        self._ended = asyncio.Event()
        self._end = RingEnd.STOPPED
        self._task = asyncio.create_task(self._ring(), name=f"timer {timer.id} ringing")

    @property
    def sound_name(self) -> str:
        return f"timer-{self.timer.id}"

    async def stop(self, end: RingEnd = RingEnd.STOPPED) -> None:
        """End the ringing (before its next round; the words of this one are cut by
        whoever hushes the room)."""
        if not self._ended.is_set():
            self._end = end
            self._ended.set()

    async def _ring(self) -> None:
        link, timer = self.link, self.timer
        self.link.add_sound(self.sound_name, self.stop)
        deadline = time.monotonic() + self._limit_s
        text = done_text(timer)
        _LOGGER.info("%s: timer %s finished: ringing", link.satellite, timer.id)
        try:
            while True:
                await link.tell(TimerFinished(id=timer.id).event())
                await self._speak(link, text)
                if self._ended.is_set() or not await self._rest(deadline):
                    break
            if self._end is not RingEnd.GONE:
                await link.tell(TimerCancelled(id=timer.id).event())
        except SatelliteGoneError:
            self._end = RingEnd.GONE
        except Exception:  # a bug, or the voice failed: the ringing ends, the server goes on
            _LOGGER.exception("%s: timer %s: ringing failed", link.satellite, timer.id)
            self._end = RingEnd.LIMIT
        finally:
            link.remove_sound(self.sound_name)
        _LOGGER.info("%s: timer %s stopped ringing (%s)", link.satellite, timer.id,
                     self._end.value)  # fmt: skip
        self._on_end(self, self._end)

    async def _rest(self, deadline: float) -> bool:
        """Wait for the interval to pass; whether to ring again (not when stopped meanwhile,
        or past the limit)."""
        left = deadline - time.monotonic()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), min(left, self._interval_s))
            if self._ended.is_set():
                return False
        if time.monotonic() >= deadline:
            await self.stop(RingEnd.LIMIT)
            return False
        return True

    async def wait(self) -> None:
        """Until the ringing has ended."""
        await asyncio.gather(self._task, return_exceptions=True)
