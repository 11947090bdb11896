"""Whether the room is in a conversation, and so what of the microphone reaches the server.

A room must not answer the television: until a conversation opens (the wake
word, push-to-talk, or always) nothing is sent. Once open it is full-duplex with
barge-in, and it stays open while either side speaks; after `idle_s` of neither
it closes. With `send_silence` off, an open conversation sends only speech, with
`PREROLL_MS` before it (the VAD needs a moment to be sure) and `TAIL_MS` after it
(the server needs the silence to know that the turn has ended).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from enum import Enum

from locara_wyoming.client.session import AudioSource

from ..audio import CHUNK_MS, MIC_FORMAT
from ..config import Activation
from .speech import SpeechChange, SpeechDetector
from .wake_word import WakeWordDetector

PREROLL_MS = 300
TAIL_MS = 1000


class ConversationChange(Enum):
    OPENED = "opened"
    CLOSED = "closed"
    SPEECH_STARTED = "speech-started"
    SPEECH_STOPPED = "speech-stopped"


class Conversation:
    """An `AudioSource` that passes the microphone on only while a conversation is open."""

    format = MIC_FORMAT

    def __init__(
        self,
        source: AudioSource,
        mode: Activation,
        speech: SpeechDetector,
        wake_word: WakeWordDetector | None,
        idle_s: float,
        send_silence: bool = True,
        on_change: Callable[[ConversationChange, str], None] = lambda change, detail: None,
        replying: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode is Activation.WAKE and wake_word is None:
            raise ValueError("wake-word activation needs a wake word detector")
        self.source = source
        self.mode = mode
        self.speech = speech
        self.wake_word = wake_word
        self.idle_s = idle_s
        self.send_silence = send_silence
        self.on_change = on_change
        self.replying = replying
        """Whether the assistant is still answering or playing: that keeps it open too."""
        self._clock = clock
        self.is_open = False
        self._last_activity = 0.0
        self._recent: deque[bytes] = deque(maxlen=PREROLL_MS // CHUNK_MS)
        self._tail_left = 0

    def open(self, reason: str) -> None:
        self._last_activity = self._clock()
        if not self.is_open:
            self.is_open = True
            self.on_change(ConversationChange.OPENED, reason)
            if self.speech.speaking:  # the wake word and the question run together
                self.on_change(ConversationChange.SPEECH_STARTED, "")

    def close(self, reason: str) -> None:
        if self.is_open:
            self.is_open = False
            if self.wake_word is not None:
                self.wake_word.reset()
            self.on_change(ConversationChange.CLOSED, reason)

    def activity(self) -> None:
        """Something happened in the conversation (the server spoke): it is not idle."""
        self._last_activity = self._clock()

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.mode is Activation.ALWAYS:
            self.open("always")
        async for chunk in self.source.chunks():
            for outgoing in self._process(chunk):
                yield outgoing

    def _process(self, chunk: bytes) -> list[bytes]:
        change = self.speech.process(chunk)
        if change is not None and self.is_open:  # what is said outside one is nobody's business
            started = change is SpeechChange.STARTED
            self.on_change(
                ConversationChange.SPEECH_STARTED if started else ConversationChange.SPEECH_STOPPED,
                "",
            )
        if not self.is_open:
            self._recent.append(chunk)
            if self.wake_word is not None and self.wake_word.process(chunk):
                self._recent.clear()  # the wake word itself is not for the server
                self.open(f"wake word {self.wake_word.name}")
            return []
        now = self._clock()
        if self.speech.speaking or self.replying():
            self._last_activity = now
        if self.mode is not Activation.ALWAYS and now - self._last_activity > self.idle_s:
            self.close(f"nothing said for {self.idle_s:g} s")
            return []
        if self.send_silence:
            return [chunk]
        if self.speech.speaking:
            self._tail_left = TAIL_MS // CHUNK_MS
            earlier, self._recent = list(self._recent), deque(maxlen=self._recent.maxlen)
            return [*earlier, chunk]
        if self._tail_left > 0:
            self._tail_left -= 1
            return [chunk]
        self._recent.append(chunk)
        return []
