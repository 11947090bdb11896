"""Where the satellite's sound comes from and goes to: sound cards, WAV files, programs.

Every microphone gives 16 kHz mono 16-bit chunks of 20 ms (what the wake word
model, the VAD and the server want); every speaker is a playback buffer that its
output pulls from in real time.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.client.playback import PlaybackBuffer

MIC_FORMAT = PcmFormat(16_000, 2, 1)
CHUNK_MS = 20
CHUNK_BYTES = MIC_FORMAT.rate * CHUNK_MS // 1000 * MIC_FORMAT.frame_bytes


class Speaker(PlaybackBuffer, ABC):
    """A playback buffer with an output behind it that pulls in real time once started."""

    on_output: Callable[[np.ndarray], None] | None = None
    """Sees each block played (on the event loop): the echo gate listens here."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...
