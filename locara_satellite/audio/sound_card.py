"""A sound card through sounddevice (PortAudio): the microphone and the loudspeaker.

Both open the device at its own rate and convert with soxr; blocks are short
(20 ms in, 10 ms out) so that little sound waits in the device and a flush is
heard at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from locara_wyoming.audio_format import MonoConverter, PcmFormat, float_to_pcm16

from ..config import Device
from . import CHUNK_MS, MIC_FORMAT, Speaker

_LOGGER = logging.getLogger(__name__)

OUTPUT_BLOCK_MS = 10
MAX_QUEUED_CHUNKS = 50
"""A second of microphone audio; older chunks go if the event loop falls that far behind."""


class SoundDeviceError(RuntimeError):
    pass


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as error:  # PortAudio itself is missing
        raise SoundDeviceError(
            f"no sound system: {error} (install PortAudio: apt-get install libportaudio2)"
        ) from None
    return sounddevice


def _device_rate(device: Device, kind: str) -> int:
    try:
        info = _sounddevice().query_devices(device, kind)
    except ValueError as error:
        raise SoundDeviceError(f"{kind} device {device!r}: {error}; see --list-devices") from None
    return int(info["default_samplerate"])


def list_devices() -> str:
    return str(_sounddevice().query_devices())


class SoundCardMicrophone:
    format = MIC_FORMAT

    def __init__(self, device: Device = None) -> None:
        self.device = device
        self.rate = _device_rate(device, "input")

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_QUEUED_CHUNKS)
        converter = MonoConverter(PcmFormat(self.rate, 2, 1), MIC_FORMAT.rate)

        def put(pcm: bytes) -> None:
            if queue.full():
                queue.get_nowait()
                _LOGGER.warning("Microphone: a second behind; dropped its oldest 20 ms")
            queue.put_nowait(pcm)

        def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
            if status:
                _LOGGER.debug("Microphone: %s", status)
            loop.call_soon_threadsafe(put, bytes(indata))

        stream = _sounddevice().RawInputStream(
            samplerate=self.rate,
            blocksize=self.rate * CHUNK_MS // 1000,
            device=self.device,
            channels=1,
            dtype="int16",
            latency="low",
            callback=callback,
        )
        with stream:
            while True:
                yield float_to_pcm16(converter.convert(await queue.get()))


class SoundCardSpeaker(Speaker):
    def __init__(
        self,
        device: Device = None,
        preroll_ms: float = 100.0,
        volume: float = 1.0,
    ) -> None:
        super().__init__(_device_rate(device, "output"), preroll_ms, volume=volume)
        self.device = device
        self._stream: Any = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def callback(outdata: Any, frames: int, time: Any, status: Any) -> None:
            block = self.pull(frames)
            outdata[:, 0] = block
            if self.on_output is not None:
                loop.call_soon_threadsafe(self.on_output, block)

        # The stream never stops between replies: starting and stopping a device pops.
        self._stream = _sounddevice().OutputStream(
            samplerate=self.rate,
            blocksize=self.rate * OUTPUT_BLOCK_MS // 1000,
            device=self.device,
            channels=1,
            dtype="float32",
            latency="low",
            callback=callback,
        )
        self._stream.start()
        self.output_latency_s = float(self._stream.latency)

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
