"""Where the satellite's sound comes from and goes to: sound cards, WAV files, programs.

Every microphone gives 16 kHz mono 16-bit chunks of 20 ms (what the wake word
model, the VAD and the server want); every speaker is a playback buffer that its
output pulls from in real time.
"""

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.client.playback import PlaybackBuffer, paced_pulls

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


class PacedSpeaker(Speaker):
    """A speaker whose output takes blocks as they come (a file, a program's stdin), paced
    here in real time as a sound card would pull them."""

    _task: asyncio.Task[None] | None = None

    @abstractmethod
    async def _output(self, block: np.ndarray) -> None:
        """Write one block of mono float32 at `rate`."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._play(), name=type(self).__name__)

    async def _play(self) -> None:
        async for block in paced_pulls(self):
            await self._output(block)
            if self.on_output is not None:
                self.on_output(block)

    async def _stop_playing(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
