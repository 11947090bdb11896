"""One spoken reply: LLM text → clauses → speech, and which words were heard.

The LLM and the TTS run at once in their own worker threads: while a clause is
spoken, the model is already writing the next one. The reply remembers the
sample range of every clause, so that a satellite's report of how much it played
becomes the words the user heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ...audio_format import PcmFormat
from ...conversation.agent import AgentReply
from ...stages.tts import TextToSpeech
from ...workers import Priority
from ..events import ReplyAudio, ReplyText
from .clauses import SpeechChunker


@dataclass(frozen=True)
class SpokenClause:
    text: str
    start_sample: int
    end_sample: int


@dataclass
class ReplyTimings:
    """Where a turn's time went, for the benchmark's stage breakdown."""

    silence_wait_ms: float = 0.0
    stt_ms: float = 0.0
    started: float = 0.0
    first_clause: float | None = None
    first_audio: float | None = None
    speech_end_to_audio_ms: float | None = None
    """From the end of the user's speech to the first audio leaving the server."""
    turn_complete: float | None = None
    """The end-of-turn model's probability that the turn was finished (None without it)."""

    def as_ms(self) -> dict[str, float]:
        result = {"silence_wait_ms": self.silence_wait_ms, "stt_ms": self.stt_ms}
        if self.turn_complete is not None:
            result["turn_complete_probability"] = round(self.turn_complete, 3)
        if self.first_clause is not None:
            result["llm_first_clause_ms"] = round(1000 * (self.first_clause - self.started), 1)
            if self.first_audio is not None:
                tts_ms = 1000 * (self.first_audio - self.first_clause)
                result["tts_first_audio_ms"] = round(tts_ms, 1)
        if self.speech_end_to_audio_ms is not None:
            result["speech_end_to_audio_ms"] = self.speech_end_to_audio_ms
        return result


@dataclass
class Reply:
    reply_id: str
    audio_format: PcmFormat
    clauses: list[SpokenClause] = field(default_factory=list)
    text_pieces: list[str] = field(default_factory=list)
    timings: ReplyTimings = field(default_factory=ReplyTimings)
    first_audio_sent: float | None = None
    answer: AgentReply | None = None
    """The LLM's reply; its turn in the history is trimmed to what was heard."""

    @property
    def text(self) -> str:
        return "".join(self.text_pieces).strip()

    @property
    def samples(self) -> int:
        return self.clauses[-1].end_sample if self.clauses else 0

    def heard_text(self, played_samples: int) -> str:
        """The words within the first `played_samples` (a partly heard clause in proportion)."""
        heard = []
        for clause in self.clauses:
            if played_samples >= clause.end_sample:
                heard.append(clause.text)
                continue
            if played_samples > clause.start_sample:
                words = clause.text.split()
                share = (played_samples - clause.start_sample) / (
                    clause.end_sample - clause.start_sample
                )
                heard.append(" ".join(words[: int(len(words) * share)]))
            break
        return " ".join(part for part in heard if part).strip()

    def record_heard(self, played_samples: int) -> None:
        """Keep in the history only the words within the first `played_samples`."""
        if self.answer is None:
            return
        turn = self.answer.turn
        if played_samples >= self.samples and not turn.interrupted:
            return
        turn.assistant = self.heard_text(played_samples)
        turn.interrupted = True

    def playing(self, now: float, margin_s: float) -> bool:
        """Whether the satellite may still be playing this reply (no report has come)."""
        if self.first_audio_sent is None:
            return True  # still being written: speech now interrupts it
        return now < self.first_audio_sent + self.samples / self.audio_format.rate + margin_s

    def estimated_played_samples(self, now: float) -> int:
        """Without a report: what the satellite can have played since the first audio left."""
        if self.first_audio_sent is None:
            return 0
        played = int((now - self.first_audio_sent) * self.audio_format.rate)
        return max(0, min(played, self.samples))


async def speak_reply(
    reply: Reply,
    answer: AgentReply,
    tts: TextToSpeech,
    voice: str,
    emit_text: Callable[[ReplyText], None],
    emit_audio: Callable[[ReplyAudio], Awaitable[None]],
) -> None:
    """Speak `answer` (the LLM's, or Home Assistant's) as `reply`; cancelling it stops the
    LLM and the TTS at once.

    The first clause is spoken alone: the LLM waits until its audio exists, so that on a
    small machine the two do not slow each other down at the moment that counts. After
    that they run side by side, the next clause being written while one is heard, at
    LATER priority: other rooms' first clauses go first.
    """
    clauses: asyncio.Queue[str | None] = asyncio.Queue()
    first_audio = asyncio.Event()
    reply.timings.started = time.monotonic()

    async def speak_clauses() -> None:
        position = 0
        priority = Priority.FIRST
        try:
            while (clause := await clauses.get()) is not None:
                start = position
                spoken = contextlib.aclosing(tts.synthesize(clause, voice, None, priority))
                priority = Priority.LATER
                async with spoken as blocks:
                    async for block in blocks:
                        if reply.timings.first_audio is None:
                            reply.timings.first_audio = time.monotonic()
                        position += len(block) // reply.audio_format.frame_bytes
                        await emit_audio(ReplyAudio(reply.reply_id, block, reply.audio_format))
                        first_audio.set()
                reply.clauses.append(SpokenClause(clause, start, position))
        finally:
            first_audio.set()

    def queue_clause(clause: str) -> None:
        if reply.timings.first_clause is None:
            reply.timings.first_clause = time.monotonic()
            answer.urgency.priority = Priority.LATER
        clauses.put_nowait(clause)

    speaker = asyncio.create_task(speak_clauses(), name=f"reply {reply.reply_id} tts")
    try:
        chunker = SpeechChunker()
        async for piece in answer.pieces:
            reply.text_pieces.append(piece)
            emit_text(ReplyText(reply.reply_id, piece))
            for clause in chunker.add(piece):
                queue_clause(clause)
            if reply.timings.first_clause is not None:
                await first_audio.wait()
        if rest := chunker.finish():
            queue_clause(rest)
        clauses.put_nowait(None)
        await speaker
    finally:
        speaker.cancel()
        await answer.pieces.aclose()  # frees the LLM at once, not when collected
