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
from dataclasses import dataclass, field

import numpy as np
import soxr

from ..audio_format import PcmFormat, float_to_pcm16, pcm_to_float

MIC_RATE = 16_000
TICK_S = 0.01
VOICED_LEVEL = 0.02


@dataclass
class PlayedReply:
    audio: PcmFormat
    buffered: list[np.ndarray] = field(default_factory=list)
    received_audio: list[np.ndarray] = field(default_factory=list)
    """Everything received, for checking what was said."""
    received: int = 0
    played: int = 0
    complete: bool = False
    audible_at: float | None = None
    flushed_at: float | None = None
    underruns: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self, count: int) -> np.ndarray:
        """The next `count` buffered samples (fewer if the buffer runs dry)."""
        available = np.concatenate(self.buffered) if self.buffered else np.zeros(0, np.float32)
        out, rest = available[:count], available[count:]
        self.buffered = [rest] if len(rest) else []
        self.played += len(out)
        return out


class SimulatedSpeaker:
    """An `AudioSink` that plays in real time through a jitter buffer."""

    def __init__(
        self, preroll_ms: float = 60.0, on_output: Callable[[np.ndarray], None] | None = None
    ) -> None:
        self.preroll_ms = preroll_ms
        self.on_output = on_output
        """Sees everything played into the room (at the microphone's rate) as it plays."""
        self.replies: dict[str, PlayedReply] = {}
        self._queue: list[str] = []
        self._output: list[np.ndarray] = []  # what reached the room, at MIC_RATE
        self._ticker: asyncio.Task[None] | None = None

    async def start_reply(self, reply_id: str, audio: PcmFormat) -> None:
        self.replies[reply_id] = PlayedReply(audio)
        self._queue.append(reply_id)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._play())

    async def write(self, reply_id: str, pcm: bytes) -> None:
        reply = self.replies[reply_id]
        if reply.flushed_at is None:
            samples = pcm_to_float(pcm, reply.audio.width)
            reply.buffered.append(samples)
            reply.received_audio.append(samples)
            reply.received += len(samples)

    async def finish_reply(self, reply_id: str) -> int:
        reply = self.replies[reply_id]
        reply.complete = True
        await reply.done.wait()
        return reply.played

    def flush(self, reply_id: str) -> int:
        reply = self.replies[reply_id]
        if reply.flushed_at is None and not reply.done.is_set():
            reply.flushed_at = time.monotonic()
            reply.buffered = []
            reply.done.set()
        return reply.played

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
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            elapsed, last = now - last, now
            output = self._tick(now, elapsed)
            self._output.append(output)
            if self.on_output is not None:
                self.on_output(output)

    def _tick(self, now: float, elapsed: float) -> np.ndarray:
        silence = np.zeros(round(elapsed * MIC_RATE), np.float32)
        while self._queue and self.replies[self._queue[0]].done.is_set():
            self._queue.pop(0)
        if not self._queue:
            return silence
        reply = self.replies[self._queue[0]]
        rate = reply.audio.rate
        waiting = reply.received - reply.played
        if reply.audible_at is None:
            if waiting < self.preroll_ms * rate / 1000 and not reply.complete:
                return silence
            reply.audible_at = now
        wanted = round(elapsed * rate)
        played = reply.take(wanted)
        if len(played) < wanted and not reply.complete:
            reply.underruns += 1
        if reply.complete and not reply.buffered:
            reply.done.set()
        room = soxr.resample(played, rate, MIC_RATE) if len(played) else played
        return np.concatenate([room, silence[len(room) :]]).astype(np.float32)


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
