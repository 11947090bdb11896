"""One room's conversation with an end-to-end model: mic frames in, replies out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from ...audio_format import PcmFormat
from ...engines.engine import FrameOutput
from ..base import VoiceSession
from ..event_queue import EventQueue
from ..events import SessionError, SessionEvent
from .batcher import FrameBatcher
from .replies import ReplySegmenter


class EndToEndSession(VoiceSession):
    def __init__(self, batcher: FrameBatcher, frame_samples: int, output: PcmFormat) -> None:
        self._batcher = batcher
        self._frame_samples = frame_samples
        self._replies = ReplySegmenter(output)
        self._pending = np.zeros(0, dtype=np.float32)
        self._events = EventQueue()
        self.slot = -1

    def push_audio(self, samples: np.ndarray) -> None:
        pending = np.concatenate([self._pending, samples])
        whole = len(pending) - len(pending) % self._frame_samples
        for start in range(0, whole, self._frame_samples):
            self._batcher.submit(self.slot, pending[start : start + self._frame_samples])
        self._pending = pending[whole:]

    def deliver(self, output: FrameOutput) -> None:
        for event in self._replies.feed(output):
            self._events.put(event)

    def fail(self, text: str) -> None:
        for event in self._replies.interrupt():
            self._events.put(event)
        self._events.put(SessionError("model-failed", text))

    @property
    def queued_audio_bytes(self) -> int:
        return self._events.audio_bytes

    async def events(self) -> AsyncIterator[SessionEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def interrupt(self) -> None:
        for event in self._replies.interrupt():
            self._events.put(event)

    def report_played(self, reply_id: str, samples: int) -> None:
        """The model keeps its own context, heard or not: nothing to trim."""

    def announced(
        self, text: str, extra_system_prompt: str | None = None, interrupted: bool = False
    ) -> None:
        """The model keeps its own context, which heard the announcement's audio, and has
        its own text prompt: nothing to add."""

    async def close(self) -> None:
        self._batcher.detach(self.slot)
        for event in self._replies.close():
            self._events.put(event)
        self._events.put(None)
