"""A session's microphone: the satellite's audio, at the backend's rate, at no more than
the pace a microphone keeps.

The uplink runs on the event loop, and its work (conversion, then the VAD on every
32 ms frame) grows with the audio a chunk declares: 1 MiB declared as 1000 Hz 8-bit
audio is seventeen minutes of it, and four such chunks once held every room up for
seconds each. So each chunk is weighed first, from its length and declared format,
against `audio_pace`: audio beyond 1.5 times real time (after a 2 s burst) is dropped
before any work is done on it, and no chunk admitted is longer than 2 s, which costs
the loop about 25 ms at worst on our 2-core machine. The backends' `push_audio` stays
on the loop: it starts tasks and emits events, which a worker thread could not.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from ..audio_format import MonoConverter, PcmFormat
from ..audio_pace import BURST_LIMIT_S, SPEED_LIMIT, AudioPace
from ..errors import OutOfOrder, TooFast

_LOGGER = logging.getLogger(__name__)

TELL_EVERY_S = 10.0
"""A satellite over the pace is told (`too-fast`), and the log warned, at most this
often: a flood, or small chunks between large ones, cannot fill the log."""


class SessionMicrophone:
    def __init__(self, satellite: str, out_rate: int) -> None:
        self._satellite = satellite
        self._out_rate = out_rate
        self._pace = AudioPace(SPEED_LIMIT, BURST_LIMIT_S)
        """One for the session's life: a new `audio-start` does not refill it."""
        self._converter: MonoConverter | None = None
        self._dropped_s = 0.0
        self._told_at = -math.inf

    def start(self, source: PcmFormat) -> None:
        """`audio-start`: the chunks to come are in `source` (BadAudioFormat if unusable)."""
        self._converter = MonoConverter(source, self._out_rate)

    def retarget(self, out_rate: int) -> None:
        """The session moved to a backend that works at `out_rate`."""
        self._out_rate = out_rate
        if self._converter is not None:
            self._converter = MonoConverter(self._converter.source, out_rate)

    def convert(self, pcm: bytes) -> np.ndarray | None:
        """`pcm` as mono float32 at the backend's rate, or None when it came too fast and
        is dropped; TooFast instead (dropped too) at most every `TELL_EVERY_S`."""
        converter = self._converter
        if converter is None:
            raise OutOfOrder("audio-chunk before audio-start")
        seconds = len(pcm) / converter.source.bytes_per_second
        if self._pace.admit(seconds):
            return converter.convert(pcm)
        converter.skip(pcm)
        self._dropped_s += seconds
        now = time.monotonic()
        if now - self._told_at < TELL_EVERY_S:
            return None
        self._told_at = now
        limit = f"{SPEED_LIMIT:g} times real time (after a {BURST_LIMIT_S:g} s burst)"
        _LOGGER.warning(
            "%s: audio sent faster than %s; dropping what is over (%.1f s of it so far)",
            self._satellite, limit, self._dropped_s,
        )  # fmt: skip
        raise TooFast(f"audio faster than {limit} is dropped")
