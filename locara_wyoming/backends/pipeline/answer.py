"""One user turn's answer: transcription, then the spoken reply.

An answer starts at the user's first pause, before the silence wait has decided
that the turn is over: speech-to-text, the LLM and the first clause's audio get
going while the user is (probably) done. Until `commit()` everything it produces
is held back; if the user goes on, `discard()` throws it away, history included.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from ...audio_format import PcmFormat
from ...config import PersonaConfig
from ...services.agent import ConversationAgent
from ...stages.stt import SpeechToText
from ...stages.tts import TextToSpeech
from ..events import (
    ReplyAudio,
    ReplyFinished,
    ReplyStarted,
    SessionError,
    SessionEvent,
    UserTranscript,
)
from .reply import Reply, speak_reply

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerContext:
    """What every answer of a session needs."""

    stt: SpeechToText
    tts: TextToSpeech
    agent: ConversationAgent
    persona: PersonaConfig
    conversation_id: str
    voice: str
    audio_format: PcmFormat
    silence_ms: float
    emit: Callable[[SessionEvent], None]
    emit_audio: Callable[[ReplyAudio], Awaitable[None]]


class Answer:
    def __init__(self, context: AnswerContext, audio: np.ndarray, speech_end_at: float) -> None:
        self.context = context
        self.speech_end_at = speech_end_at
        self.committed = False
        self.reply: Reply | None = None
        self._held: list[SessionEvent] = []
        self.task = asyncio.get_running_loop().create_task(self._run(audio))

    def commit(self) -> None:
        """The turn is over: send what was held back, and everything from now on."""
        self.committed = True
        held, self._held = self._held, []
        for event in held:
            self._send(event)

    def discard(self) -> None:
        """The user went on: nobody heard this answer, so it never happened."""
        self.task.cancel()
        if self.reply is not None and self.reply.answer is not None:
            self.reply.answer.withdraw()

    def _send(self, event: SessionEvent) -> None:
        if isinstance(event, ReplyAudio):
            self._mark_first_audio()
        self.context.emit(event)

    def _emit(self, event: SessionEvent) -> None:
        if self.committed:
            self._send(event)
        else:
            self._held.append(event)

    async def _emit_audio(self, event: ReplyAudio) -> None:
        if self.committed:
            self._mark_first_audio()
            await self.context.emit_audio(event)
        else:
            self._held.append(event)

    def _mark_first_audio(self) -> None:
        reply = self.reply
        if reply is not None and reply.first_audio_sent is None:
            reply.first_audio_sent = time.monotonic()
            reply.timings.speech_end_to_audio_ms = round(
                1000 * (reply.first_audio_sent - self.speech_end_at), 1
            )

    async def _run(self, audio: np.ndarray) -> None:
        context = self.context
        started = time.monotonic()
        try:
            pieces = [
                piece async for piece in context.stt.transcribe(audio, context.persona.language)
            ]
        except Exception as error:  # the turn fails, the session goes on
            _LOGGER.exception("transcription failed")
            self._emit(SessionError("stt-failed", f"speech-to-text failed: {error}"))
            return
        text = "".join(pieces).strip()
        if not text:
            return
        reply = Reply(reply_id=uuid.uuid4().hex[:12], audio_format=context.audio_format)
        reply.timings.silence_wait_ms = context.silence_ms
        reply.timings.stt_ms = round(1000 * (time.monotonic() - started), 1)
        self.reply = reply
        self._emit(UserTranscript(text))
        self._emit(ReplyStarted(reply.reply_id))
        try:
            await speak_reply(
                reply,
                context.agent,
                context.tts,
                context.persona,
                context.conversation_id,
                text,
                context.voice,
                self._emit,
                self._emit_audio,
            )
        except Exception as error:
            _LOGGER.exception("reply failed")
            self._emit(SessionError("reply-failed", f"the reply failed: {error}"))
            return
        self._emit(ReplyFinished(reply.reply_id, reply.text, reply.timings.as_ms()))
