"""How fast a satellite may send its microphone: a token bucket over seconds of audio.

A microphone makes one second of audio a second. A satellite may run ahead of that for a
moment (audio it kept while it reconnected, packets a network held back and let go at
once), not for long. The server admits a session's audio at up to `SPEED_LIMIT` times
real time, measured against the format the satellite declared, with `BURST_LIMIT_S` to
spare, and drops the rest (docs/protocol.md, "Uplink"); the client library keeps well
under that. One bucket serves both: the server asks `admit`, the client waits `wait_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SPEED_LIMIT = 1.5
BURST_LIMIT_S = 2.0


class AudioPace:
    """Up to `speed` seconds of audio a second, and `burst_s` at once after a pause."""

    def __init__(
        self, speed: float, burst_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.speed = speed
        self.burst_s = burst_s
        self._clock = clock
        self._allowance = burst_s
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._allowance = min(self.burst_s, self._allowance + (now - self._at) * self.speed)
        self._at = now
        return self._allowance

    def admit(self, seconds: float) -> bool:
        """Take `seconds` of audio if the pace allows them now; False, taking nothing, if
        not (always for more than a burst)."""
        if seconds > self._refill():
            return False
        self._allowance -= seconds
        return True

    def wait_s(self, seconds: float) -> float:
        """How long until `seconds` of audio (a whole burst, if more) keep the pace."""
        missing = min(seconds, self.burst_s) - self._refill()
        return max(0.0, missing / self.speed)

    def take(self, seconds: float) -> None:
        """Count `seconds` of audio as sent, allowed or not."""
        self._refill()
        self._allowance -= seconds
