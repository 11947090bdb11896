"""Local voice activity detection with pymicro-vad: a tiny model, no torch (0.12 ms per
10 ms block on our x86 VM).

The server runs Silero on what it receives and decides when a turn ends; the
satellite's own VAD decides what to send at all (when silence stays off the
network), keeps an open conversation alive while someone talks, and tells the
server when speech starts and stops.
"""

from __future__ import annotations

from enum import Enum

from pymicro_vad import MicroVad

from ..audio import MIC_FORMAT

VAD_BLOCK_BYTES = MIC_FORMAT.rate // 100 * MIC_FORMAT.frame_bytes  # 10 ms


class SpeechChange(Enum):
    STARTED = "started"
    STOPPED = "stopped"


class SpeechDetector:
    """Speech starts after `start_ms` of voiced audio and stops after `stop_ms` without."""

    def __init__(self, threshold: float = 0.5, start_ms: int = 30, stop_ms: int = 600) -> None:
        self.threshold = threshold
        self.speaking = False
        self._vad = MicroVad()
        self._start_blocks = start_ms // 10
        self._stop_blocks = stop_ms // 10
        self._run = 0  # consecutive blocks that disagree with `speaking`

    def process(self, chunk: bytes) -> SpeechChange | None:
        """A chunk of 16 kHz mono 16-bit audio (whole 10 ms blocks); a change, if any."""
        change = None
        for offset in range(0, len(chunk) - VAD_BLOCK_BYTES + 1, VAD_BLOCK_BYTES):
            voiced = (
                self._vad.process_10ms(chunk[offset : offset + VAD_BLOCK_BYTES]) > self.threshold
            )
            self._run = self._run + 1 if voiced != self.speaking else 0
            if self._run >= (self._stop_blocks if self.speaking else self._start_blocks):
                self.speaking, self._run = not self.speaking, 0
                change = SpeechChange.STARTED if self.speaking else SpeechChange.STOPPED
        return change
