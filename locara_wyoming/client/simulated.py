"""A microphone and a loudspeaker on a real-time clock, for machines without sound cards.

The tests and the benchmark use them in place of hardware; everything above them
(the session client, the protocol, the server) runs for real. The speaker plays
through a jitter buffer with pre-roll and records when each reply became audible,
when it was flushed and how much of it played. The microphone speaks scripted
utterances between stretches of silence and can hear the speaker (echo) at a
chosen level and delay, as a room does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from ..audio_format import PcmFormat, float_to_pcm16
from .playback import PlaybackBuffer, paced_pulls

MIC_RATE = 16_000
TICK_S = 0.01
VOICED_LEVEL = 0.02


class SimulatedSpeaker(PlaybackBuffer):
    """An `AudioSink` that plays into the simulated room in real time, keeping what it got."""

    def __init__(
        self, preroll_ms: float = 60.0, on_output: Callable[[np.ndarray], None] | None = None
    ) -> None:
        super().__init__(MIC_RATE, preroll_ms, keep_audio=True)
        self.on_output = on_output
        """Sees everything played into the room (at the microphone's rate) as it plays."""
        self._output: list[np.ndarray] = []  # what reached the room
        self._ticker: asyncio.Task[None] | None = None

    async def start_reply(self, reply_id: str, audio: PcmFormat) -> None:
        await super().start_reply(reply_id, audio)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._play())

    def take_output(self) -> np.ndarray:
        """Everything played into the room since the last call, at the microphone's rate."""
        out = np.concatenate(self._output) if self._output else np.zeros(0, np.float32)
        self._output = []
        return out

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _play(self) -> None:
        async for output in paced_pulls(self, TICK_S):
            self._output.append(output)
            if self.on_output is not None:
                self.on_output(output)


@dataclass(frozen=True)
class Utterance:
    """When the microphone sent the first and last voiced samples of something said."""

    voiced_start: float
    voiced_end: float


class SimulatedMicrophone:
    """An `AudioSource` at 16 kHz: silence, scripted speech, and optionally the room's echo."""

    format = PcmFormat(MIC_RATE, 2, 1)

    def __init__(
        self,
        speaker: SimulatedSpeaker | None = None,
        echo_gain: float = 0.0,
        echo_delay_ms: float = 30.0,
        chunk_ms: float = 20.0,
    ) -> None:
        self.speaker = speaker
        self.echo_gain = echo_gain
        self.chunk = round(MIC_RATE * chunk_ms / 1000)
        self._echo = np.zeros(round(MIC_RATE * echo_delay_ms / 1000), np.float32)
        self._script: list[tuple[np.ndarray, asyncio.Future[Utterance]]] = []
        self._stopped = False

    async def say(self, samples: np.ndarray) -> Utterance:
        """Speak mono float32 samples at 16 kHz; returns once they have all been sent."""
        done: asyncio.Future[Utterance] = asyncio.get_running_loop().create_future()
        self._script.append((samples, done))
        return await done

    def stop(self) -> None:
        self._stopped = True

    async def chunks(self) -> AsyncIterator[bytes]:
        started = time.monotonic()
        sent = 0
        speech: np.ndarray | None = None
        position, voiced, first_voiced, last_voiced = 0, np.zeros(0, bool), None, None
        while not self._stopped:
            if speech is None and self._script:
                speech = self._script[0][0]
                position, voiced = 0, np.abs(speech) > VOICED_LEVEL
                first_voiced = last_voiced = None
            chunk = np.zeros(self.chunk, np.float32)
            if speech is not None:
                part = speech[position : position + self.chunk]
                chunk[: len(part)] = part
                at = started + sent / MIC_RATE
                indexes = np.flatnonzero(voiced[position : position + self.chunk])
                if len(indexes):
                    first_voiced = first_voiced or at + indexes[0] / MIC_RATE
                    last_voiced = at + indexes[-1] / MIC_RATE
                position += self.chunk
                if position >= len(speech):
                    _, done = self._script.pop(0)
                    if not done.done():  # else whoever was saying it stopped waiting
                        done.set_result(Utterance(first_voiced or at, last_voiced or at))
                    speech = None
            chunk += self._room_echo()
            yield float_to_pcm16(chunk)
            sent += self.chunk
            await asyncio.sleep(max(0.0, started + sent / MIC_RATE - time.monotonic()))

    def _room_echo(self) -> np.ndarray:
        if self.speaker is None or not self.echo_gain:
            return np.zeros(self.chunk, np.float32)
        self._echo = np.concatenate([self._echo, self.speaker.take_output() * self.echo_gain])
        out = self._echo[: self.chunk]
        self._echo = self._echo[self.chunk :]
        return np.concatenate([out, np.zeros(self.chunk - len(out), np.float32)])
