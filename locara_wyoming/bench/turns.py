"""One room's turns as a person hears them: when the answer came, and what came too soon.

A scripted satellite (a simulated microphone and speaker around the real session
client) says each utterance in real time, pauses and all. Every time is on the
satellite's monotonic clock:

- the real end of a turn is the moment the microphone sent the utterance's last
  voiced sample (`Question.real_end_at`), however long the user paused before it;
- an early reply is a reply that became audible at the speaker before that moment:
  the user was still speaking (the satellite's barge-in cuts it, as in a room);
- the answer is the first reply audible after the real end; `v2v_ms` is the time
  from the real end to it; a turn whose answer is not audible within `MISSED_END_S`
  missed the end; one with no answer within the options' `answer_timeout_s` timed
  out, which is recorded, not raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from ..client.playback import ReplyPlayback
from ..client.scripted import ScriptedSatellite, Seen
from .options import VoiceBenchOptions
from .report import summary
from .server_process import ServerProcess
from .utterances import Question

TURN_GAP_S = 0.6
"""Silence between a reply's end and the next utterance, as a person leaves it."""
MISSED_END_S = 3.0
"""A turn whose answer is not audible this long after the real end missed the end."""
PLAYED_WITHIN_S = 120.0
"""How long a turn's replies may take to be made and played out."""
STAGES = ("silence_wait_ms", "stt_ms", "llm_first_clause_ms", "tts_first_audio_ms")


@dataclass
class Tally:
    """Turn measurements of one phase."""

    v2v_ms: list[float]
    stages: dict[str, list[float]]
    asked: int = 0
    early_replies: int = 0
    missed_ends: int = 0
    timed_out: list[str] = field(default_factory=list)
    """The utterances whose turn got no answer, or whose replies did not end, in time."""
    findings: list[dict[str, Any]] = field(default_factory=list)
    """Each turn with an early reply, a missed end or a timeout, and what the server heard."""
    false_bargeins: int = 0
    silent_replies: int = 0

    @classmethod
    def empty(cls) -> Tally:
        return cls([], {name: [] for name in (*STAGES, "transport_and_playout_ms")})

    def add(self, other: Tally) -> None:
        self.v2v_ms += other.v2v_ms
        for name, values in other.stages.items():
            self.stages[name] += values
        self.asked += other.asked
        self.early_replies += other.early_replies
        self.missed_ends += other.missed_ends
        self.timed_out += other.timed_out
        self.findings += other.findings
        self.false_bargeins += other.false_bargeins
        self.silent_replies += other.silent_replies

    def report(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "turns": len(self.v2v_ms),
            "v2v_ms": summary(self.v2v_ms),
            "early_replies": self.early_replies,
            "missed_ends": self.missed_ends,
            "timeouts": len(self.timed_out),
            "timed_out": self.timed_out,
            "stages_ms_p50": {
                name: summary(values)["p50"] for name, values in self.stages.items() if values
            },
            "false_bargein": self.false_bargeins,
            "silent_replies": self.silent_replies,
            "findings": self.findings,
        }


def satellite(server: ServerProcess, name: str, options: VoiceBenchOptions) -> ScriptedSatellite:
    return ScriptedSatellite(
        server.uri, name, echo_gain=options.echo_gain, echo_delay_ms=options.echo_delay_ms
    )


def _reply_id(seen: Seen) -> str:
    return str(seen.event.data.get("context", {}).get("reply_id", ""))


def _audible_between(room: ScriptedSatellite, start: float, end: float) -> int:
    """How many replies became audible after `start` and before `end`."""
    return sum(
        1
        for reply in list(room.speaker.replies.values())
        if reply.audible_at is not None and start < reply.audible_at < end
    )


async def _quiet(room: ScriptedSatellite) -> bool:
    """Wait until no reply is being made or played; False if that took too long."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(PLAYED_WITHIN_S):
            while True:  # busy() is the session's state, with no event to wait on
                if not room.client.busy():
                    return True
                await asyncio.sleep(0.02)
    return False


def _add_timings(tally: Tally, room: ScriptedSatellite, answer: TimedAnswer) -> None:
    """The server's stage times for an audible answer, and whether it was cut although
    the user had stopped (a false barge-in)."""
    assert answer.reply is not None
    handled = [s for s in room.seen_of("handled") if _reply_id(s) == answer.reply_id]
    context: dict[str, Any] = handled[0].event.data.get("context", {}) if handled else {}
    if answer.reply.flushed_at is not None or context.get("interrupted"):
        tally.false_bargeins += 1
    timings = context.get("timings", {})
    for name in STAGES:
        if name in timings:
            tally.stages[name].append(float(timings[name]))
    if "speech_end_to_audio_ms" in timings:
        transport = answer.ms - float(timings["speech_end_to_audio_ms"])
        tally.stages["transport_and_playout_ms"].append(transport)


@dataclass(frozen=True)
class TimedAnswer:
    reply_id: str
    reply: ReplyPlayback | None
    """None: the reply ended with nothing to say."""
    ms: float
    """From the real end to the reply audible (or ended, when silent)."""


async def _answer(room: ScriptedSatellite, end: float, timeout_s: float) -> TimedAnswer | None:
    """The first reply after the real end `end`; None if none came within `timeout_s`."""
    try:
        reply_id, reply = await room.answer_after(end, timeout_s)
    except TimeoutError:
        return None
    if reply is not None:
        return TimedAnswer(reply_id, reply, 1000 * float((reply.audible_at or end) - end))
    ended = [s.at for s in room.seen_of("handled", end) if _reply_id(s) == reply_id]
    return TimedAnswer(reply_id, None, 1000 * float(ended[0] - end))


async def turn(
    room: ScriptedSatellite, question: Question, tally: Tally, options: VoiceBenchOptions
) -> None:
    """Say `question`, wait for the answer to the whole of it, then until the room is
    quiet and a person's pause more."""
    began = time.monotonic()
    said = await room.say(question.samples)
    end = question.real_end_at(said) or said.voiced_end
    tally.asked += 1
    early = _audible_between(room, began, end)
    tally.early_replies += early
    answer = await _answer(room, end, options.answer_timeout_s)
    quiet = await _quiet(room)
    timed_out = answer is None or not quiet
    if answer is not None and answer.reply is not None:
        tally.v2v_ms.append(answer.ms)
        _add_timings(tally, room, answer)
    elif answer is not None:  # the LLM wrote nothing speakable ("…")
        tally.silent_replies += 1
    missed = answer is None or answer.ms > 1000 * MISSED_END_S
    tally.missed_ends += missed
    if timed_out:
        tally.timed_out.append(question.text)
    if early or missed or timed_out:
        heard = [str(s.event.data.get("text", "")) for s in room.seen_of("transcript", began)]
        tally.findings.append(
            {
                "utterance": question.text,
                "voice": question.voice,
                "early_replies": early,
                "answer_ms": None if answer is None else round(answer.ms, 1),
                "timed_out": timed_out,
                "heard": heard,
            }
        )
    await asyncio.sleep(TURN_GAP_S)


async def converse(
    server: ServerProcess, name: str, questions: list[Question], options: VoiceBenchOptions
) -> Tally:
    """One room asking `questions` in turn."""
    tally = Tally.empty()
    room = satellite(server, name, options)
    await room.start()
    try:
        for question in questions:
            await turn(room, question, tally, options)
    finally:
        await room.stop()
    return tally
