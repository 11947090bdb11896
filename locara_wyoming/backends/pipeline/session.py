"""A room's conversation on the cascaded pipeline: VAD → STT → LLM → TTS.

The uplink (`push_audio`) only runs the VAD and the turn detector, a fraction of a
millisecond per 32 ms frame; answers run as tasks whose model calls sit in worker
threads. An answer starts at the user's first pause, when the end-of-turn model is
also asked whether the words so far are a finished thought: a finished one is
committed after a short silence (`complete_silence_ms`), an unfinished one after a
long one (`incomplete_silence_ms`), and nothing is heard before the commit; if the
user goes on, the answer is thrown away. Speech over a reply (past the barge-in
guard) cancels it at once and tells the satellite to drop its buffer; speech within
`continuation_ms` of the reply becoming audible also takes the reply back out of the
history and joins the user's words before and after into one turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator

import numpy as np

from ...config import LocaraConfig
from ...conversation.agent import ConversationAgent
from ...stages.loading import Stages
from ...stages.turn_end import SmartTurn
from ...stages.vad import FRAME_SAMPLES, VAD_RATE
from ..base import SessionSettings, VoiceSession
from ..event_queue import EventQueue
from ..events import ReplyAudio, ReplyInterrupted, SessionEvent, VoiceStarted, VoiceStopped
from .answer import Answer, AnswerContext, Continued
from .endings import sounds_unfinished
from .turns import (
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechSustained,
    TurnDetector,
    TurnEnded,
)

_LOGGER = logging.getLogger(__name__)

FRAME_MS = 1000 * FRAME_SAMPLES / VAD_RATE
PREROLL_FRAMES = 10  # audio kept from before the detected start of speech (320 ms)
SPECULATE_MS = 96


class PipelineSession(VoiceSession):
    def __init__(
        self,
        settings: SessionSettings,
        stages: Stages,
        agent: ConversationAgent,
        config: LocaraConfig,
        voice: str,
    ) -> None:
        self.settings = settings
        sessions = config.sessions
        turn_taking = settings.turn_taking
        self._played_margin_s = sessions.played_wait_s
        self._max_utterance_frames = int(config.limits.max_audio_seconds * 1000 / FRAME_MS)
        self._vad = stages.vad.stream()
        self._turn_end = stages.turn_end if turn_taking.end_of_turn == "smart-turn" else None
        self._turn_end_threshold = config.turn_end.threshold
        self._complete_silence_ms = turn_taking.complete_silence_ms
        self._incomplete_silence_ms = turn_taking.incomplete_silence_ms
        self._continuation_s = turn_taking.continuation_ms / 1000
        self._guard_s = sessions.bargein_guard_ms / 1000
        self._turns = TurnDetector(
            frame_ms=FRAME_MS,
            threshold=sessions.vad_threshold,
            # Until the model has judged a pause, it may be the middle of a thought.
            silence_ms=(
                turn_taking.incomplete_silence_ms
                if self._turn_end is not None
                else turn_taking.silence_ms
            ),
            min_speech_ms=sessions.min_speech_ms,
            guard_ms=sessions.bargein_guard_ms,
            speculate_ms=SPECULATE_MS,
        )
        audio_format = stages.tts.voices[voice].audio
        self._answer_context = AnswerContext(
            stt=stages.stt,
            tts=stages.tts,
            agent=agent,
            persona=settings.persona,
            conversation_id=settings.conversation_id or settings.session_id,
            voice=voice,
            audio_format=audio_format,
            emit=self._emit,
            emit_audio=self._emit_audio,
            home_control=settings.home_control,
            sounds=settings.sounds,
        )
        self._audio_budget = sessions.max_buffered_audio_s * audio_format.bytes_per_second
        self._budget_freed = asyncio.Event()
        self._events = EventQueue()
        self._pending = np.zeros(0, dtype=np.float32)
        self._recent: deque[np.ndarray] = deque(maxlen=PREROLL_FRAMES)
        self._utterance: list[np.ndarray] = []
        self._speculative: Answer | None = None
        self._answer: Answer | None = None  # the committed answer, speaking or spoken
        self._turn_audio = np.zeros(0, dtype=np.float32)
        """The committed turn's audio, which a continuation is joined to."""
        self._continued: Continued | None = None
        """The answer the user talked on over, until the joined turn is committed."""
        self._judgements: set[asyncio.Task[None]] = set()
        self._turn_complete: float | None = None
        """The end-of-turn model's probability for the current pause, once judged."""
        self._ended: set[str] = set()
        """Replies that no longer play (interrupted, or reported played): their audio is dropped."""
        self._question: asyncio.Future[str] | None = None
        """Waits for the next turn's words (`next_words`) while not done."""
        self._closed = False

    # -- uplink -------------------------------------------------------------------

    def push_audio(self, samples: np.ndarray) -> None:
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = len(audio) // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = audio[whole:]
        for start in range(0, whole, FRAME_SAMPLES):
            self._on_frame(audio[start : start + FRAME_SAMPLES])

    def _on_frame(self, frame: np.ndarray) -> None:
        probability = self._vad.probabilities(frame)[0]
        self._recent.append(frame)
        if self._turns.in_speech:
            self._utterance.append(frame)
        events = self._turns.update(probability)
        if self._turns.in_speech and len(self._utterance) >= self._max_utterance_frames:
            _LOGGER.info("%s: utterance reached its length limit", self.settings.satellite)
            events.append(self._turns.force_end())
        for event in events:
            if isinstance(event, SpeechStarted):
                self._emit(VoiceStarted(event.at_ms))
                self._utterance = list(self._recent)
            elif isinstance(event, SpeechSustained) and self._reply_active():
                if self._continues_turn(time.monotonic() - self._guard_s):
                    self._continue_turn()
                else:
                    asyncio.get_running_loop().create_task(self.interrupt())
            elif isinstance(event, SpeechPaused):
                self._on_pause(event)
            elif isinstance(event, SpeechResumed):
                self._drop_speculation()
            elif isinstance(event, TurnEnded):
                self._end_turn(event)

    def _on_pause(self, event: SpeechPaused) -> None:
        """Start answering (held back), and ask the end-of-turn model how long to wait."""
        self._drop_speculation()
        self._turn_complete = None
        audio = np.concatenate(self._utterance)
        pause_seen_at = time.monotonic()
        self._speculative = Answer(
            self._answer_context,
            audio,
            pause_seen_at - SPECULATE_MS / 1000,
            self._continued,
            self._open_question(),
        )
        if self._turn_end is not None:
            judgement = asyncio.get_running_loop().create_task(
                self._judge_pause(self._turn_end, event.pause, audio, self._speculative)
            )
            self._judgements.add(judgement)
            judgement.add_done_callback(self._judgements.discard)

    async def _judge_pause(
        self, model: SmartTurn, pause: int, audio: np.ndarray, answer: Answer
    ) -> None:
        """Settle the pause's silence wait: short when the model hears a finished thought and
        the words so far (the speculative answer's transcript) do not stop mid-phrase."""
        try:
            probability, transcript = await asyncio.gather(
                model.complete_probability(audio), asyncio.shield(answer.transcribed)
            )
        except Exception:  # the pause then waits the long silence: slower, never wrong
            _LOGGER.exception("%s: the end-of-turn model failed", self.settings.satellite)
            return
        self._turn_complete = probability
        unfinished_words = transcript is not None and sounds_unfinished(transcript)
        complete = probability >= self._turn_end_threshold and not unfinished_words
        _LOGGER.debug(
            "%s: pause %d judged %s (model %.2f%s)",
            self.settings.satellite,
            pause,
            "complete" if complete else "unfinished",
            probability,
            ", the words stop mid-phrase" if unfinished_words else "",
        )
        wait_ms = self._complete_silence_ms if complete else self._incomplete_silence_ms
        if not self._closed and (ended := self._turns.settle(pause, wait_ms)) is not None:
            self._end_turn(ended)

    def _end_turn(self, event: TurnEnded) -> None:
        _LOGGER.debug(
            "%s: turn over after %d ms of silence", self.settings.satellite, event.silence_ms
        )
        self._emit(VoiceStopped(event.speech_end_ms))
        self._commit(event.silence_ms)

    def _drop_speculation(self) -> None:
        for judgement in self._judgements:  # of a pause the user has spoken after
            judgement.cancel()
        if self._speculative is not None:
            self._speculative.discard()
            self._speculative = None

    def _commit(self, silence_ms: float) -> None:
        end_of_turn = (silence_ms, self._turn_complete)
        answer, self._speculative = self._speculative, None
        utterance, self._utterance = self._utterance, []
        self._turn_audio = np.concatenate(utterance)
        question = self._open_question()
        if answer is not None and answer.question is not question:
            # Started before a question was asked (or answered): this turn goes the other way.
            answer.discard()
            answer = None
        if answer is None:  # the turn was cut at the length limit, with no pause before
            answer = Answer(
                self._answer_context,
                self._turn_audio,
                time.monotonic(),
                self._continued,
                question,
            )
        self._continued = None
        previous, self._answer = self._answer, answer
        if previous is not None:
            asyncio.get_running_loop().create_task(self._supersede(previous, answer, end_of_turn))
        else:
            answer.commit(*end_of_turn)

    async def _supersede(
        self, previous: Answer, answer: Answer, end_of_turn: tuple[float, float | None]
    ) -> None:
        """A new turn while the last reply still speaks: that reply gives way first."""
        await self._interrupt(previous)
        answer.commit(*end_of_turn)

    # -- a user who goes on -------------------------------------------------------------

    def _continues_turn(self, speech_started_at: float) -> bool:
        """Whether speech that began at `speech_started_at` goes on with the last turn: the
        reply to it was not yet audible, or only for less than `continuation_ms`. A turn goes
        on once at most: in a room whose speaker the microphone hears too loudly, the reply's
        own echo would otherwise cut and restart every reply."""
        answer = self._answer
        if answer is None or answer.continues is not None or self._continuation_s <= 0:
            return False
        reply = answer.reply
        if reply is None or reply.first_audio_sent is None:
            return True
        return speech_started_at - reply.first_audio_sent < self._continuation_s

    def _continue_turn(self) -> None:
        """Stop the reply, and make the words before it the start of the turn now spoken."""
        answer, self._answer = self._answer, None
        assert answer is not None
        _LOGGER.info("%s: the user went on; their turn continues", self.settings.satellite)
        self._continued = Continued(answer, len(self._turn_audio))
        self._utterance = [self._turn_audio, *self._utterance]
        asyncio.get_running_loop().create_task(self._interrupt(answer))

    # -- questions ------------------------------------------------------------------

    def next_words(self) -> asyncio.Future[str]:
        if self._closed:
            raise ConnectionError("the session has closed")
        if self._question is None or self._question.done():
            self._question = asyncio.get_running_loop().create_future()
        return self._question

    def announced(
        self, text: str, extra_system_prompt: str | None = None, interrupted: bool = False
    ) -> None:
        context = self._answer_context
        context.agent.announced(
            context.persona, context.conversation_id, text, extra_system_prompt, interrupted
        )

    def _open_question(self) -> asyncio.Future[str] | None:
        question = self._question
        return question if question is not None and not question.done() else None

    # -- barge-in and played reports ---------------------------------------------------

    def _reply_active(self) -> bool:
        answer = self._answer
        if answer is None or answer.reply is None:
            return answer is not None and not answer.task.done()
        reply = answer.reply
        return reply.reply_id not in self._ended and (
            not answer.task.done() or reply.playing(time.monotonic(), self._played_margin_s)
        )

    async def interrupt(self) -> None:
        if self._answer is not None:
            await self._interrupt(self._answer)

    async def _interrupt(self, answer: Answer) -> None:
        reply = answer.reply
        if not answer.task.done():
            answer.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answer.task
        if reply is None or reply.reply_id in self._ended:
            return
        self._ended.add(reply.reply_id)
        reply.record_heard(reply.estimated_played_samples(time.monotonic()))
        self._emit(ReplyInterrupted(reply.reply_id))

    def report_played(self, reply_id: str, samples: int) -> None:
        continued = self._continued.answer if self._continued is not None else None
        for answer in (self._answer, continued):
            reply = answer.reply if answer is not None else None
            if reply is not None and reply.reply_id == reply_id:
                reply.record_heard(samples)
                self._ended.add(reply_id)

    # -- downlink ---------------------------------------------------------------------

    def _emit(self, event: SessionEvent) -> None:
        if self._closed:
            return
        self._events.put(event)

    async def _emit_audio(self, event: ReplyAudio) -> None:
        """Queue reply audio, waiting while more than the budget waits for the satellite."""
        queued = self._events
        while queued.audio_bytes and queued.audio_bytes + len(event.audio) > self._audio_budget:
            self._budget_freed.clear()
            await self._budget_freed.wait()
        self._emit(event)

    @property
    def queued_audio_bytes(self) -> int:
        return self._events.audio_bytes

    async def events(self) -> AsyncIterator[SessionEvent]:
        while (event := await self._events.get()) is not None:
            if isinstance(event, ReplyAudio):
                self._budget_freed.set()
                if event.reply_id in self._ended:
                    continue
            yield event

    async def close(self) -> None:
        self._closed = True
        if (question := self._open_question()) is not None:
            question.set_exception(ConnectionError("the session closed before the answer"))
        self._drop_speculation()
        if self._answer is not None:
            self._answer.task.cancel()
        self._events.put(None)
