"""The jitter buffer between a session's reply audio and an output device.

Replies arrive in bursts (TTS makes audio faster than real time, then pauses
between clauses); an output device pulls a fixed number of frames at a steady
pace, from its own thread for a sound card. The buffer holds each reply back until
`preroll_ms` of it is there (or all of it), counts underruns (a pull that finds
the playing reply dry before its end), stops at once on a flush with a few
milliseconds of fade so that nothing clicks, and tells how many samples of each
reply were really played, in the reply's own rate, as the protocol reports them.

Every output (a sound card, a WAV file, a program's stdin, the simulated room)
runs on this one buffer; it converts each reply to the output's rate with soxr.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import soxr

from ..audio_format import PcmFormat, pcm_to_float

_LOGGER = logging.getLogger(__name__)

FADE_MS = 5.0
"""A flushed reply fades out over this long instead of stopping on a click."""

REPLIES_KEPT = 16
"""Finished replies kept for their figures; older ones are let go (a satellite runs for
months)."""


@dataclass
class ReplyPlayback:
    """One reply's way through the buffer. Counts are in samples at the reply's rate."""

    audio: PcmFormat
    received: int = 0
    played: int = 0
    complete: bool = False
    audible_at: float | None = None
    flushed_at: float | None = None
    silent_at: float | None = None
    """When a flushed reply's last sound left the output."""
    ended_at: float | None = None
    """When a reply that was not flushed had played to its end."""
    underruns: int = 0
    received_audio: list[np.ndarray] = field(default_factory=list)
    """Everything received (when the buffer keeps audio), for checking what was said."""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _buffered: list[np.ndarray] = field(default_factory=list)  # at the output's rate
    _buffered_count: int = 0
    _output_played: int = 0
    _resampler: soxr.ResampleStream | None = None
    _dry: bool = False
    _finished: bool = False


class PlaybackBuffer:
    """An `AudioSink` whose audio an output device pulls with `pull(frames)`."""

    def __init__(
        self,
        rate: int,
        preroll_ms: float = 60.0,
        keep_audio: bool = False,
        volume: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.preroll_ms = preroll_ms
        self.volume = volume
        self.output_latency_s = 0.0
        """How long a pulled block takes to be heard (a sound card's buffer)."""
        self.keep_audio = keep_audio
        self.replies: dict[str, ReplyPlayback] = {}
        self.underruns = 0
        """Underruns over every reply so far."""
        self._clock = clock
        self._queue: list[str] = []
        self._fade_tail = np.zeros(0, np.float32)
        self._fading: ReplyPlayback | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the session's side (the event loop) -------------------------------------

    async def start_reply(self, reply_id: str, audio: PcmFormat) -> None:
        self._loop = asyncio.get_running_loop()
        reply = ReplyPlayback(audio)
        if audio.rate != self.rate:
            reply._resampler = soxr.ResampleStream(audio.rate, self.rate, 1, dtype="float32")
        with self._lock:
            self.replies[reply_id] = reply
            self._queue.append(reply_id)
            finished = [
                key
                for key, kept in self.replies.items()
                if kept._finished and key not in self._queue  # a flushed one may wait there
            ]
            for key in finished[: max(0, len(finished) - REPLIES_KEPT)]:
                del self.replies[key]

    async def write(self, reply_id: str, pcm: bytes) -> None:
        reply = self.replies[reply_id]
        samples = pcm_to_float(pcm, reply.audio.width)
        if reply.audio.channels > 1:
            samples = samples.reshape(-1, reply.audio.channels).mean(axis=1).astype(np.float32)
        if self.keep_audio:
            reply.received_audio.append(samples)
        converted = (
            samples if reply._resampler is None else reply._resampler.resample_chunk(samples)
        )
        with self._lock:
            if reply.flushed_at is not None:
                return
            reply.received += len(samples)
            reply._buffered.append(converted)
            reply._buffered_count += len(converted)

    async def finish_reply(self, reply_id: str) -> int:
        """Wait until the reply has played out; return the samples played."""
        reply = self.replies[reply_id]
        rest = (
            np.zeros(0, np.float32)
            if reply._resampler is None
            else reply._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        )
        with self._lock:
            if reply.flushed_at is None:
                reply._buffered.append(rest)
                reply._buffered_count += len(rest)
            reply.complete = True
        await reply.done.wait()
        return reply.played

    def flush(self, reply_id: str) -> int:
        """Stop the reply now, dropping what is buffered; return the samples played
        (none of a reply interrupted before any of its audio came)."""
        reply = self.replies.get(reply_id)
        if reply is None:
            return 0
        with self._lock:
            if reply.flushed_at is None and not reply._finished:
                reply.flushed_at = self._clock()
                if self._queue and self._queue[0] == reply_id and reply.audible_at is not None:
                    fade = self._take(reply, round(self.rate * FADE_MS / 1000))
                    self._fade_tail = fade * np.linspace(1.0, 0.0, len(fade), dtype=np.float32)
                    self._fading = reply
                else:
                    reply.silent_at = reply.flushed_at
                reply._buffered, reply._buffered_count = [], 0
                self._finish(reply)
        return reply.played

    # -- the device's side (any thread) ------------------------------------------

    def pull(self, frames: int) -> np.ndarray:
        """The next `frames` samples to play (mono float32 at `rate`); silence when idle."""
        out = np.zeros(frames, np.float32)
        with self._lock:
            filled = min(frames, len(self._fade_tail))
            out[:filled] = self._fade_tail[:filled]
            self._fade_tail = self._fade_tail[filled:]
            if self._fading is not None and not len(self._fade_tail):
                self._faded(self._fading, filled)
            while filled < frames and self._queue:
                reply = self.replies[self._queue[0]]
                if reply._finished:
                    self._queue.pop(0)
                    continue
                if reply.audible_at is None:
                    if (
                        not reply.complete
                        and reply._buffered_count < self.preroll_ms * self.rate / 1000
                    ):
                        break
                    reply.audible_at = self._clock()
                taken = self._take(reply, frames - filled)
                out[filled : filled + len(taken)] = taken
                filled += len(taken)
                if reply.complete and not reply._buffered_count:
                    self._queue.pop(0)
                    self._finish(reply)
                elif filled < frames:
                    self._note_underrun(reply)
                    break
                else:
                    reply._dry = False
        if self.volume != 1.0:
            np.clip(out * self.volume, -1.0, 1.0, out=out)
        return out

    def _take(self, reply: ReplyPlayback, count: int) -> np.ndarray:
        # From the front chunks only: a long reply can hold minutes of audio here.
        parts, needed = [], count
        while needed > 0 and reply._buffered:
            head = reply._buffered[0]
            parts.append(head[:needed])
            if len(head) > needed:
                reply._buffered[0] = head[needed:]
            else:
                reply._buffered.pop(0)
            needed -= len(parts[-1])
        taken = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        reply._buffered_count -= len(taken)
        reply._output_played += len(taken)
        reply.played = min(
            reply.received, round(reply._output_played * reply.audio.rate / self.rate)
        )
        return taken

    def _faded(self, reply: ReplyPlayback, samples: int) -> None:
        self._fading = None
        reply.silent_at = self._clock() + samples / self.rate + self.output_latency_s
        assert reply.flushed_at is not None
        _LOGGER.info(
            "Flushed: silent %.1f ms after the signal",
            1000 * (reply.silent_at - reply.flushed_at),
        )

    def _note_underrun(self, reply: ReplyPlayback) -> None:
        if reply._dry:
            return  # one underrun per dry spell, however many pulls it lasts
        reply._dry = True
        reply.underruns += 1
        self.underruns += 1
        _LOGGER.warning(
            "Playback underrun (%d so far): the reply's audio came too late", self.underruns
        )

    def _finish(self, reply: ReplyPlayback) -> None:
        reply._finished = True
        if reply.complete and reply.flushed_at is None:
            reply.played = reply.received
            reply.ended_at = self._clock()
            _LOGGER.info(
                "Played a reply of %.1f s, %d underruns",
                reply.received / reply.audio.rate,
                reply.underruns,
            )
        if self._loop is not None:
            self._loop.call_soon_threadsafe(reply.done.set)


async def paced_pulls(buffer: PlaybackBuffer, tick_s: float = 0.01) -> AsyncIterator[np.ndarray]:
    """Pull from the buffer on the real-time clock, as a sound card would, one block a tick."""
    started = time.monotonic()
    pulled = 0
    while True:
        await asyncio.sleep(tick_s)
        due = round((time.monotonic() - started) * buffer.rate) - pulled
        if due > 0:
            pulled += due
            yield buffer.pull(due)
