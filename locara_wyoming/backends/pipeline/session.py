"""A room's conversation on the cascaded pipeline: VAD → STT → LLM → TTS.

The uplink (`push_audio`) only runs the VAD and the turn detector, a fraction of a
millisecond per 32 ms frame; answers run as tasks whose model calls sit in worker
threads. An answer starts at the user's first pause and is committed when the
silence wait ends, or thrown away if the user goes on. Speech over a reply (past
the barge-in guard) cancels it at once and tells the satellite to drop its buffer.
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
from ...services.agent import ConversationAgent
from ...services.stages import Stages
from ...stages.vad import FRAME_SAMPLES, VAD_RATE
from ..base import SessionSettings, VoiceSession
from ..event_queue import EventQueue
from ..events import ReplyAudio, ReplyInterrupted, SessionEvent, VoiceStarted, VoiceStopped
from .answer import Answer, AnswerContext
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
        self._played_margin_s = sessions.played_wait_s
        self._max_utterance_frames = int(config.limits.max_audio_seconds * 1000 / FRAME_MS)
        self._vad = stages.vad.stream()
        self._turns = TurnDetector(
            frame_ms=FRAME_MS,
            threshold=sessions.vad_threshold,
            silence_ms=sessions.silence_ms,
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
            conversation_id=settings.session_id,
            voice=voice,
            audio_format=audio_format,
            silence_ms=float(self._turns.silence_ms),
            emit=self._emit,
            emit_audio=self._emit_audio,
            home_control=settings.home_control,
        )
        self._audio_budget = sessions.max_buffered_audio_s * audio_format.bytes_per_second
        self._budget_freed = asyncio.Event()
        self._events = EventQueue()
        self._pending = np.zeros(0, dtype=np.float32)
        self._recent: deque[np.ndarray] = deque(maxlen=PREROLL_FRAMES)
        self._utterance: list[np.ndarray] = []
        self._speculative: Answer | None = None
        self._answer: Answer | None = None  # the committed answer, speaking or spoken
        self._ended: set[str] = set()
        """Replies that no longer play (interrupted, or reported played): their audio is dropped."""
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
                asyncio.get_running_loop().create_task(self.interrupt())
            elif isinstance(event, SpeechPaused):
                self._speculate(time.monotonic() - SPECULATE_MS / 1000)
            elif isinstance(event, SpeechResumed):
                self._drop_speculation()
            elif isinstance(event, TurnEnded):
                self._emit(VoiceStopped(event.speech_end_ms))
                self._commit()

    def _speculate(self, speech_end_at: float) -> None:
        self._drop_speculation()
        audio = np.concatenate(self._utterance)
        self._speculative = Answer(self._answer_context, audio, speech_end_at)

    def _drop_speculation(self) -> None:
        if self._speculative is not None:
            self._speculative.discard()
            self._speculative = None

    def _commit(self) -> None:
        answer, self._speculative = self._speculative, None
        utterance, self._utterance = self._utterance, []
        if answer is None:  # the turn was cut at the length limit, with no pause before
            answer = Answer(self._answer_context, np.concatenate(utterance), time.monotonic())
        previous, self._answer = self._answer, answer
        if previous is not None:
            asyncio.get_running_loop().create_task(self._supersede(previous, answer))
        else:
            answer.commit()

    async def _supersede(self, previous: Answer, answer: Answer) -> None:
        """A new turn while the last reply still speaks: that reply gives way first."""
        await self._interrupt(previous)
        answer.commit()

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
        answer = self._answer
        if answer is not None and answer.reply is not None and answer.reply.reply_id == reply_id:
            answer.reply.record_heard(samples)
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
        self._drop_speculation()
        if self._answer is not None:
            self._answer.task.cancel()
        self._events.put(None)
