"""A WAV file as the microphone (`--mic-file`) and as the speaker (`--snd-file`).

Both run in real time, so that a file stands in for a room exactly: the server
hears the file at the pace it was recorded, and the output file is what a
loudspeaker would have played, silences included.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from locara_wyoming.audio_format import MonoConverter, PcmFormat, float_to_pcm16

from . import CHUNK_BYTES, CHUNK_MS, MIC_FORMAT, PacedSpeaker


class AudioFileError(ValueError):
    pass


def read_wav(path: Path) -> tuple[PcmFormat, bytes]:
    try:
        with wave.open(str(path), "rb") as wav:
            audio = PcmFormat(wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            return audio, wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise AudioFileError(f"{path}: not a readable WAV file: {error}") from None


def wav_to_mic_format(path: Path) -> bytes:
    """A whole WAV file as 16 kHz mono 16-bit PCM."""
    audio, pcm = read_wav(path)
    return float_to_pcm16(MonoConverter(audio, MIC_FORMAT.rate).convert(pcm, last=True))


class WavFileMicrophone:
    """Sends a WAV file as if spoken into a microphone, then ends."""

    format = MIC_FORMAT

    def __init__(self, path: Path) -> None:
        self.pcm = wav_to_mic_format(path)

    async def chunks(self) -> AsyncIterator[bytes]:
        started = time.monotonic()
        for index, offset in enumerate(range(0, len(self.pcm), CHUNK_BYTES)):
            chunk = self.pcm[offset : offset + CHUNK_BYTES]
            yield chunk.ljust(CHUNK_BYTES, b"\0")
            await asyncio.sleep(
                max(0.0, started + (index + 1) * CHUNK_MS / 1000 - time.monotonic())
            )


class WavFileSpeaker(PacedSpeaker):
    """Plays into a mono 16-bit WAV file in real time; the file is complete once closed."""

    def __init__(
        self,
        path: Path,
        rate: int,
        preroll_ms: float,
        volume: float = 1.0,
    ) -> None:
        super().__init__(rate, preroll_ms, volume=volume)
        self.path = path
        try:
            self._wav = wave.open(str(path), "wb")  # noqa: SIM115 (closed in close())
        except OSError as error:
            raise AudioFileError(f"{path}: cannot write: {error.strerror}") from None
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)

    async def _output(self, block: np.ndarray) -> None:
        self._wav.writeframes(float_to_pcm16(block))

    async def close(self) -> None:
        await self._stop_playing()
        self._wav.close()
