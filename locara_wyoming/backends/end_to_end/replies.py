"""Cut an end-to-end model's endless output into replies that satellites understand.

Moshi speaks a frame every 80 ms, silence included, and writes its words as text
tokens alongside. A reply starts with the first word (with the frames just before
it, where its sound begins), carries every frame after that, and ends after
`gap_frames` frames without a word. Between replies nothing is sent: the model is
listening, and a satellite shows "listening" instead of a voice of silence.
"""

from __future__ import annotations

import uuid
from collections import deque

from ...audio_format import PcmFormat, float_to_pcm16
from ...engines.engine import FrameOutput
from ..events import (
    ReplyAudio,
    ReplyFinished,
    ReplyInterrupted,
    ReplyStarted,
    ReplyText,
    SessionEvent,
)

LEAD_FRAMES = 2
"""Frames sent from before a reply's first word (its sound starts a little early)."""
GAP_FRAMES = 12
"""Frames without a word (0.96 s) that end a reply."""


class ReplySegmenter:
    def __init__(self, audio: PcmFormat, gap_frames: int = GAP_FRAMES) -> None:
        self.audio = audio
        self.gap_frames = gap_frames
        self.reply_id: str | None = None
        self._lead: deque[bytes] = deque(maxlen=LEAD_FRAMES)
        self._text: list[str] = []
        self._quiet = 0

    def feed(self, output: FrameOutput) -> list[SessionEvent]:
        if output.pcm is None:
            return []
        pcm = float_to_pcm16(output.pcm)
        events: list[SessionEvent] = []
        if self.reply_id is None:
            if not output.text:
                self._lead.append(pcm)
                return []
            self.reply_id = uuid.uuid4().hex
            events.append(ReplyStarted(self.reply_id))
            events.extend(ReplyAudio(self.reply_id, lead, self.audio) for lead in self._lead)
            self._lead.clear()
            self._text, self._quiet = [], 0
        events.append(ReplyAudio(self.reply_id, pcm, self.audio))
        if output.text:
            self._text.append(output.text)
            self._quiet = 0
            events.append(ReplyText(self.reply_id, output.text))
        else:
            self._quiet += 1
            if self._quiet >= self.gap_frames:
                events.append(self._end())
        return events

    def _end(self) -> ReplyFinished:
        assert self.reply_id is not None
        finished = ReplyFinished(self.reply_id, "".join(self._text).strip(), {})
        self.reply_id = None
        return finished

    def interrupt(self) -> list[SessionEvent]:
        """Drop the reply being spoken; the next word starts a new one."""
        if self.reply_id is None:
            return []
        interrupted = ReplyInterrupted(self.reply_id)
        self.reply_id = None
        return [interrupted]

    def close(self) -> list[SessionEvent]:
        return [self._end()] if self.reply_id is not None else []
