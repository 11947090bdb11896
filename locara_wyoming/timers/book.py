"""Each satellite's timers as Home Assistant last told them, so that a satellite that
reconnects gets them again and one that was away when a timer finished still hears it.

Home Assistant's timer manager decides when a timer finishes; the book only follows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..protocol.control import TimerInfo


@dataclass
class KeptTimer:
    info: TimerInfo
    """As Home Assistant told it; `seconds_left` counted from `told_at`."""
    told_at: float
    finished_at: float | None = None
    """When Home Assistant said it finished; it stays here until it has rung."""

    def now(self, at: float) -> TimerInfo:
        """The timer with `seconds_left` counted down to `at` (a paused one stands still)."""
        if not self.info.active or self.finished_at is not None:
            return self.info
        left = self.info.seconds_left - (at - self.told_at)
        return replace(self.info, seconds_left=max(0, round(left)))


class TimerBook:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._timers: dict[str, dict[str, KeptTimer]] = {}

    def keep(self, satellite: str, info: TimerInfo) -> None:
        """A timer started or changed (paused, resumed, time added or taken)."""
        self._timers.setdefault(satellite, {})[info.id] = KeptTimer(info, self._clock())

    def finish(self, satellite: str, info: TimerInfo) -> KeptTimer:
        now = self._clock()
        kept = self._timers.setdefault(satellite, {}).get(info.id)
        if kept is None:  # a timer started before the server did, or before it restarted
            kept = self._timers[satellite][info.id] = KeptTimer(info, now)
        kept.info = replace(kept.info, seconds_left=0, active=False)
        kept.finished_at = now
        return kept

    def drop(self, satellite: str, timer_id: str) -> None:
        timers = self._timers.get(satellite, {})
        timers.pop(timer_id, None)
        if not timers:
            self._timers.pop(satellite, None)

    def running(self, satellite: str) -> list[TimerInfo]:
        """The satellite's timers that have not finished, as they stand now."""
        now = self._clock()
        kept = self._timers.get(satellite, {}).values()
        return [timer.now(now) for timer in kept if timer.finished_at is None]

    def finished(self, satellite: str, within_s: float) -> list[TimerInfo]:
        """The satellite's finished timers that have not rung yet, if they finished within
        `within_s`; older ones are dropped."""
        now = self._clock()
        due = []
        for timer in list(self._timers.get(satellite, {}).values()):
            if timer.finished_at is None:
                continue
            if now - timer.finished_at <= within_s:
                due.append(timer.info)
            else:
                self.drop(satellite, timer.info.id)
        return due
