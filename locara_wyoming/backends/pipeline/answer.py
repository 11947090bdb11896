"""One user turn's answer: transcription, then the spoken reply.

An answer starts at the user's first pause, before the end of turn is decided:
speech-to-text, the LLM and the first clause's audio get going while the user is
(probably) done. Until `commit()` everything it produces is held back; if the user
goes on, `discard()` throws it away, history included.

An answer may continue an earlier one the user talked on over (see
`continuation.py`): its audio holds both parts, and once transcribed it either
replaces the earlier turn in the history or, when the new words only said "stop",
answers nothing and leaves the earlier turn as heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import numpy as np

from ...audio_format import PcmFormat
from ...backends.base import HomeControl, RoomSounds
from ...config import PersonaConfig
from ...conversation.agent import AgentReply, ConversationAgent
from ...stages.remote import RemoteServiceError
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
from .continuation import is_stop_request
from .reply import Reply, speak_reply

_LOGGER = logging.getLogger(__name__)


def _log_failure(what: str, error: Exception) -> None:
    """A remote service that is down is no bug here, and its message says it all; anything
    else is logged with its traceback."""
    remote = isinstance(error, RemoteServiceError)
    _LOGGER.error("%s failed: %s", what, error, exc_info=not remote)


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
    emit: Callable[[SessionEvent], None]
    emit_audio: Callable[[ReplyAudio], Awaitable[None]]
    home_control: HomeControl | None = None
    sounds: RoomSounds | None = None


@dataclass(frozen=True)
class Continued:
    """An answer the user talked on over: this turn's audio holds its words, then theirs."""

    answer: Answer
    new_words_at: int
    """Where the user's new words start in this turn's audio (samples)."""


class Answer:
    def __init__(
        self,
        context: AnswerContext,
        audio: np.ndarray,
        speech_end_at: float,
        continues: Continued | None = None,
        question: asyncio.Future[str] | None = None,
    ) -> None:
        self.context = context
        self.speech_end_at = speech_end_at
        self.continues = continues
        self.question = question
        """Set when the turn answers a question: its words go there, not to the LLM."""
        self.committed = False
        self.transcript: str | None = None
        self.transcribed: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        """The transcript once known (None when transcription failed or was cancelled)."""
        self.reply: Reply | None = None
        self._end_of_turn: tuple[float, float | None] = (0.0, None)
        self._held: list[SessionEvent] = []
        self._committed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(audio))

    def commit(self, silence_wait_ms: float, turn_complete: float | None = None) -> None:
        """The turn is over (after `silence_wait_ms` of silence; the end-of-turn model gave
        it `turn_complete`): send what was held back, and everything from now on."""
        self.committed = True
        self._end_of_turn = (silence_wait_ms, turn_complete)
        if self.reply is not None:
            self._time_end_of_turn(self.reply)
        self._committed.set()
        held, self._held = self._held, []
        for event in held:
            self._send(event)

    def _time_end_of_turn(self, reply: Reply) -> None:
        reply.timings.silence_wait_ms, reply.timings.turn_complete = self._end_of_turn

    def discard(self) -> None:
        """The user went on: nobody heard this answer, so it never happened."""
        self.task.cancel()
        self.withdraw()

    def withdraw(self) -> None:
        """Take this answer's turn out of the history."""
        if self.reply is not None and self.reply.answer is not None:
            self.reply.answer.withdraw()

    def _send(self, event: SessionEvent) -> None:
        if isinstance(event, ReplyAudio):
            self._mark_first_audio()
        elif isinstance(event, ReplyFinished) and self.reply is not None:
            # A reply finished before its turn was over: its timings are complete only now
            # (the silence waited, its first audio's send).
            event = replace(event, timings=self.reply.timings.as_ms())
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

    async def _answer(self, text: str) -> AgentReply:
        """Home Assistant's answer when the persona asks it first and it handles the words;
        otherwise the LLM's."""
        context = self.context
        persona, home = context.persona, context.home_control
        if home is not None and home.available and persona.home_control == "home_assistant_first":
            # Only once the turn is over: "turn on the lights … in the kitchen" must not
            # switch on every light at the pause.
            await self._committed.wait()
            speech = await home.ask(text, persona.language)
            if speech is not None:
                _LOGGER.info("Home Assistant handled the request")
                return context.agent.told(context.conversation_id, text, speech)
        return context.agent.respond(persona, context.conversation_id, text)

    async def _answer_question(self, question: asyncio.Future[str], text: str) -> None:
        """The turn's words answer a question: they go to whoever asked it once the turn is
        over, and are neither answered nor kept in the history."""
        self._emit(UserTranscript(text))
        await self._committed.wait()
        if not question.done():
            question.set_result(text)

    async def _hushed(self, text: str) -> bool:
        """Whether `text` only said "stop" while an announcement played or a timer rang, and
        once the turn was over, ended it: then nothing answers, and nothing enters the
        history (the LLM never sees it)."""
        sounds = self.context.sounds
        if sounds is None or not is_stop_request(text) or not sounds.sounding():
            return False
        await self._committed.wait()
        if not await sounds.hush():
            return False
        _LOGGER.info("The user said stop: the announcement or timer ended")
        return True

    async def _run(self, audio: np.ndarray) -> None:
        try:
            await self._transcribe_and_answer(audio)
        finally:
            if not self.transcribed.done():
                self.transcribed.set_result(self.transcript)

    async def _transcribe(self, audio: np.ndarray) -> str:
        context = self.context
        pieces = [piece async for piece in context.stt.transcribe(audio, context.persona.language)]
        return "".join(pieces).strip()

    async def _transcribe_and_answer(self, audio: np.ndarray) -> None:
        context = self.context
        started = time.monotonic()
        continues = self.continues
        try:
            if continues is not None:
                # The new words alone first: Whisper may drop a short "stop" after a whole
                # question when it hears both together.
                added = await self._transcribe(audio[continues.new_words_at :])
                if is_stop_request(added):
                    # A barge-in after all: the earlier turn stays as it was heard.
                    _LOGGER.info("The user went on only to stop the reply")
                    self.transcript = added
                    self._emit(UserTranscript(added))
                    return
            text = self.transcript = await self._transcribe(audio)
        except Exception as error:  # the turn fails, the session goes on
            _log_failure("transcription", error)
            self._emit(SessionError("stt-failed", f"speech-to-text failed: {error}"))
            return
        self.transcribed.set_result(text)
        if not text:
            return
        if self.question is not None:  # whatever the words, they answer the question
            await self._answer_question(self.question, text)
            return
        if await self._hushed(text):
            self._emit(UserTranscript(text))
            return
        if continues is not None:
            continues.answer.withdraw()  # answered again, as a whole, now
        reply = Reply(reply_id=uuid.uuid4().hex[:12], audio_format=context.audio_format)
        self._time_end_of_turn(reply)
        reply.timings.stt_ms = round(1000 * (time.monotonic() - started), 1)
        self.reply = reply
        self._emit(UserTranscript(text))
        reply_open = False
        failure = None
        try:
            reply.answer = answer = await self._answer(text)
            self._emit(ReplyStarted(reply.reply_id))
            reply_open = True
            await speak_reply(
                reply, answer, context.tts, context.voice, self._emit, self._emit_audio
            )
        except Exception as error:  # the turn fails, the session goes on
            _log_failure("reply", error)
            failure = SessionError("reply-failed", f"the reply failed: {error}")
        if reply_open:  # a failed reply ends too: the satellite plays what it has of it
            self._emit(ReplyFinished(reply.reply_id, reply.text, reply.timings.as_ms()))
        if failure is not None:
            self._emit(failure)
