"""Keep the assistant's own voice, heard back by the microphone, from reaching the server.

In a room the speaker's sound reaches the microphone. Without echo cancellation
(or with a weak one) the server's VAD takes it for the user talking over the
reply, cuts the reply off and answers its own words. The satellite knows what it
played and when, so it compares levels: while the speaker plays, a microphone
chunk passes only when it is clearly louder than the echo the speaker alone
would cause; a chunk that is only echo is sent as silence. The echo path's gain
is learnt from what the microphone hears while the speaker plays (the ratios'
upper quartile, which echo-only chunks dominate) and kept from one reply to the next.
The user speaking up over the reply is louder than its echo, so barge-in works:
with the echo 26 dB down (a speakerphone's own echo canceller) nearly all of the
user's speech gets through; 10 dB down, about a third; with no echo cancellation
and the speaker as loud as the user, none: such a device needs real echo
cancellation.

This is a level-based echo suppressor (the non-linear stage of a classic echo
canceller), not an adaptive filter: it needs a few microseconds per chunk and no
model, which suits a Raspberry Pi. A device with its own echo cancellation (most
USB speakerphones) leaves it little to do. No maintained Python package offers
one without a native build (speexdsp, WebRTC APM), hence this small one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator

import numpy as np

from ..audio_format import PcmFormat, pcm_to_float
from .session import AudioSource

BLOCK_MS = 10
MIN_LEARNT = 25
"""Chunks heard while the speaker played (half a second) before the room's gain is trusted."""


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


class EchoGate:
    """Judges microphone chunks against what the speaker played just before.

    `echo_window_ms` covers the echo path's delay (output and input latency, the
    room) plus its spread; `margin` is how much louder than the expected echo the
    microphone must be to count as the user (2 is 6 dB); below `floor` the
    speaker counts as silent.
    """

    def __init__(
        self,
        rate: int,
        echo_window_ms: float = 200.0,
        margin: float = 2.0,
        floor: float = 0.003,
        learnt_chunks: int = 400,
    ) -> None:
        self.rate = rate
        self.margin = margin
        self.floor = floor
        self.suppressed = 0
        """Chunks sent as silence so far."""
        self._block = max(1, rate * BLOCK_MS // 1000)
        self._window_s = echo_window_ms / 1000
        self._played: deque[tuple[float, float]] = deque()  # (end time, rms) per block
        self._pending = np.zeros(0, np.float32)
        self._ratios: deque[float] = deque(maxlen=learnt_chunks)

    def played(self, samples: np.ndarray, at: float | None = None) -> None:
        """The speaker played `samples` (mono float32 at `rate`), the last one at `at`."""
        now = time.monotonic() if at is None else at
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        blocks = len(audio) // self._block
        self._pending = audio[blocks * self._block :]
        block_s = self._block / self.rate
        last_end = now - len(self._pending) / self.rate
        for index in range(blocks):
            level = _rms(audio[index * self._block : (index + 1) * self._block])
            self._played.append((last_end - (blocks - 1 - index) * block_s, level))
        horizon = now - 2 * self._window_s - 1.0
        while self._played and self._played[0][0] < horizon:
            self._played.popleft()

    def coupling(self) -> float:
        """The echo gain (microphone level over speaker level) the room has shown.

        The upper quartile of the ratios heard while the speaker played: chunks where
        the echo has not arrived yet pull the ratio down, the user talking pushes it up,
        and echo-only chunks are most of them. Until enough are heard the gain is taken
        as 1 (a loud room), so that a first reply cannot interrupt itself.
        """
        if len(self._ratios) < MIN_LEARNT:
            return max(1.0, float(np.max(self._ratios, initial=0.0)))
        return float(np.percentile(self._ratios, 75))

    def is_echo(self, chunk: np.ndarray, at: float | None = None) -> bool:
        """Whether a microphone chunk (float32), captured up to `at`, is only the speaker."""
        now = time.monotonic() if at is None else at
        start = now - len(chunk) / self.rate - self._window_s
        echo_source = max((level for end, level in self._played if end >= start), default=0.0)
        if echo_source < self.floor:
            return False
        ratio = _rms(chunk) / echo_source
        self._ratios.append(ratio)
        if ratio <= self.margin * self.coupling():
            self.suppressed += 1
            return True
        return False


class EchoGatedSource:
    """An audio source whose chunks that are only the speaker's echo become silence."""

    def __init__(self, source: AudioSource, gate: EchoGate) -> None:
        self.format: PcmFormat = source.format
        self._source = source
        self._gate = gate

    async def chunks(self) -> AsyncIterator[bytes]:
        async for pcm in self._source.chunks():
            samples = pcm_to_float(pcm, self.format.width)
            yield bytes(len(pcm)) if self._gate.is_echo(samples) else pcm
