"""Raw PCM through programs (`--mic-command arecord …`, `--snd-command aplay …`).

As wyoming-satellite users know them: the microphone program writes raw PCM to
its stdout, the speaker program reads raw 16-bit PCM from its stdin. A speaker
program keeps its own buffer, which delays a flush by as much as it holds: a
sound card through sounddevice stops faster.
"""

from __future__ import annotations

import asyncio
import shlex
from asyncio.subprocess import Process
from collections.abc import AsyncIterator

import numpy as np

from locara_wyoming.audio_format import MonoConverter, PcmFormat, float_to_pcm16

from . import CHUNK_MS, MIC_FORMAT, PacedSpeaker


class CommandError(RuntimeError):
    pass


async def _start(command: str, stdin: int | None = None, stdout: int | None = None) -> Process:
    try:
        return await asyncio.create_subprocess_exec(
            *shlex.split(command), stdin=stdin, stdout=stdout
        )
    except OSError as error:
        raise CommandError(f"cannot run {command!r}: {error.strerror}") from None


class CommandMicrophone:
    format = MIC_FORMAT

    def __init__(self, command: str, audio: PcmFormat) -> None:
        audio.validate()
        self.command = command
        self.audio = audio

    async def chunks(self) -> AsyncIterator[bytes]:
        process = await _start(self.command, stdout=asyncio.subprocess.PIPE)
        assert process.stdout is not None
        converter = MonoConverter(self.audio, MIC_FORMAT.rate)
        block = self.audio.rate * CHUNK_MS // 1000 * self.audio.frame_bytes
        try:
            while pcm := await process.stdout.read(block):
                yield float_to_pcm16(converter.convert(pcm))
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()


class CommandSpeaker(PacedSpeaker):
    """Plays in real time into a program's stdin as 16-bit PCM at `rate` with `channels`."""

    def __init__(
        self,
        command: str,
        rate: int,
        channels: int,
        preroll_ms: float,
        volume: float = 1.0,
    ) -> None:
        super().__init__(rate, preroll_ms, volume=volume)
        self.command = command
        self.channels = channels
        self._process: Process | None = None

    async def start(self) -> None:
        self._process = await _start(self.command, stdin=asyncio.subprocess.PIPE)
        await super().start()

    async def _output(self, block: np.ndarray) -> None:
        assert self._process is not None and self._process.stdin is not None
        frames = np.repeat(block[:, None], self.channels, axis=1).reshape(-1)
        self._process.stdin.write(float_to_pcm16(frames))
        await self._process.stdin.drain()

    async def close(self) -> None:
        await self._stop_playing()
        if self._process is not None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            await self._process.wait()
