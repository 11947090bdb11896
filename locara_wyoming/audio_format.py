"""Convert any PCM stream (rate, width, channels) to mono 16-bit at one rate with soxr."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from .errors import BadAudioFormat

MAX_RATE = 384_000
MAX_CHANNELS = 32


class AudioFormatError(BadAudioFormat, ValueError):
    """An audio format the server cannot use."""


@dataclass(frozen=True)
class PcmFormat:
    rate: int
    width: int
    channels: int

    def validate(self) -> None:
        if not isinstance(self.rate, int) or not 1000 <= self.rate <= MAX_RATE:
            raise AudioFormatError(f"unusable sample rate {self.rate!r} (1000 to {MAX_RATE} Hz)")
        if self.width not in (1, 2, 3, 4):
            raise AudioFormatError(f"unusable sample width {self.width!r} (1 to 4 bytes)")
        if not isinstance(self.channels, int) or not 1 <= self.channels <= MAX_CHANNELS:
            raise AudioFormatError(
                f"unusable channel count {self.channels!r} (1 to {MAX_CHANNELS})"
            )

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.frame_bytes


def pcm_to_float(pcm: bytes, width: int) -> np.ndarray:
    """Signed little-endian PCM (unsigned for 8-bit, as WAV has it) to float32 in [-1, 1]."""
    if width == 1:
        return (np.frombuffer(pcm, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    if width == 3:
        raw = np.frombuffer(pcm, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float32) / float(1 << 23)
    return (np.frombuffer(pcm, dtype="<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)


def float_to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    return bytes((clipped * 32767.0).astype("<i2").tobytes())


class MonoConverter:
    """Streams PCM of any format to mono float32 at `out_rate`.

    Chunks may split frames: the remainder is kept for the next chunk.
    """

    def __init__(self, source: PcmFormat, out_rate: int) -> None:
        source.validate()
        self.source = source
        self.out_rate = out_rate
        self._pending = b""
        self._resampler = (
            None
            if source.rate == out_rate
            else soxr.ResampleStream(source.rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def skip(self, pcm: bytes) -> None:
        """Leave `pcm` out, keeping the chunks after it aligned on whole frames."""
        data = self._pending + pcm
        self._pending = data[len(data) - len(data) % self.source.frame_bytes :]

    def convert(self, pcm: bytes, last: bool = False) -> np.ndarray:
        data = self._pending + pcm
        usable = len(data) - len(data) % self.source.frame_bytes
        self._pending = data[usable:]
        samples = pcm_to_float(data[:usable], self.source.width)
        if self.source.channels > 1:
            samples = samples.reshape(-1, self.source.channels).mean(axis=1)
        if self._resampler is None:
            return samples.astype(np.float32, copy=False)
        return np.asarray(self._resampler.resample_chunk(samples, last=last), dtype=np.float32)
