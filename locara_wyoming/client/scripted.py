"""A satellite that speaks scripted utterances and records, on one clock, what came back.

The benchmark and the tests drive sessions with it: a simulated microphone and
speaker around the real session client, over a real connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from wyoming.event import Event

from ..protocol.auth import PairingCode
from ..protocol.session import SessionRequest, SessionStarted
from .echo_gate import EchoGate, EchoGatedSource
from .playback import ReplyPlayback
from .session import SessionClient, SessionFailedError
from .simulated import MIC_RATE, SimulatedMicrophone, SimulatedSpeaker, Utterance

SAY_SLACK_S = 30.0
"""How much longer than the audio itself saying it may take before it counts as stuck."""
STOP_WAIT_S = 60.0


@contextlib.asynccontextmanager
async def within(timeout_s: float, awaited: str) -> AsyncIterator[None]:
    """`asyncio.timeout`, whose TimeoutError says what did not come in time."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        raise TimeoutError(f"{awaited}: not within {timeout_s:g} s") from None


@dataclass(frozen=True)
class TalkedOver:
    story: ReplyPlayback
    interruption: Utterance
    still_playing: bool
    """Whether the story was still playing when the interruption began."""

    @property
    def bargein_ms(self) -> float | None:
        """The interruption's first voiced sample → the story dropped; None if it was not."""
        if self.story.flushed_at is None:
            return None
        return 1000 * (self.story.flushed_at - self.interruption.voiced_start)

    def ended_within(self, seconds: float) -> bool:
        """Whether the story played to its end before `seconds` into the interruption:
        too soon for a barge-in to have cut it."""
        ended = self.story.ended_at
        return ended is not None and ended - self.interruption.voiced_start < seconds


@dataclass(frozen=True)
class Seen:
    at: float
    event: Event


class ScriptedSatellite:
    def __init__(
        self,
        uri: str,
        name: str,
        area: str | None = None,
        echo_gain: float = 0.0,
        echo_delay_ms: float = 30.0,
        preroll_ms: float = 60.0,
        echo_gate: bool = True,
        resume: str | None = None,
        credential: PairingCode | None = None,
    ) -> None:
        self.gate = EchoGate(MIC_RATE) if echo_gate else None
        self.speaker = SimulatedSpeaker(preroll_ms, self.gate.played if self.gate else None)
        self.mic = SimulatedMicrophone(self.speaker, echo_gain, echo_delay_ms)
        source = EchoGatedSource(self.mic, self.gate) if self.gate else self.mic
        self.seen: list[Seen] = []
        self.client = SessionClient(
            uri,
            SessionRequest(name=name, area=area, resume=resume),
            source,
            self.speaker,
            self._record,
            1.0,
            credential=credential,
        )
        self._task: asyncio.Task[SessionStarted] | None = None

    def _record(self, event: Event) -> None:
        self.seen.append(Seen(time.monotonic(), event))

    async def start(self, timeout_s: float = 30.0) -> SessionStarted:
        self._task = asyncio.create_task(self.client.run())
        ready = asyncio.create_task(self.client.ready.wait())
        await asyncio.wait([ready, self._task], timeout=timeout_s, return_when="FIRST_COMPLETED")
        if self._task.done():
            self._task.result()  # raises the session's error
        ready.cancel()
        if self.client.started is None:
            self._task.cancel()
            raise TimeoutError(f"the server opened no session in {timeout_s:.0f} s")
        return self.client.started

    @property
    def ended(self) -> bool:
        """Whether the session has ended (by `stop`, or lost)."""
        return self._task is not None and self._task.done()

    async def say(self, samples: np.ndarray) -> Utterance:
        """Speak into the session; raises SessionFailedError if the session ends first, and
        TimeoutError if the microphone is not taken in the audio's length and
        `SAY_SLACK_S` (a script waiting on a microphone nobody reads would wait forever)."""
        assert self._task is not None, "start() the satellite first"
        speaking = asyncio.ensure_future(self.mic.say(samples))
        try:
            limit_s = len(samples) / MIC_RATE + SAY_SLACK_S
            await asyncio.wait(
                [speaking, self._task], timeout=limit_s, return_when="FIRST_COMPLETED"
            )
            if speaking.done():
                return speaking.result()
            if self._task.done():
                error = None if self._task.cancelled() else self._task.exception()
                raise SessionFailedError(f"the session ended while speaking ({error or 'stopped'})")
            raise TimeoutError(f"the microphone was not taken for {limit_s:.0f} s")
        finally:
            speaking.cancel()

    async def reply_after(
        self, moment: float, timeout_s: float = 60.0
    ) -> tuple[str, ReplyPlayback]:
        """The first reply that became audible after `moment`."""
        async with within(timeout_s, "a reply to be heard"):
            while True:
                for reply_id, reply in self.speaker.replies.items():
                    if reply.audible_at is not None and reply.audible_at > moment:
                        return reply_id, reply
                await asyncio.sleep(0.01)

    async def answer_after(
        self, moment: float, timeout_s: float = 60.0
    ) -> tuple[str, ReplyPlayback | None]:
        """The first reply after `moment`: audible, or (None) finished with nothing to say.
        A reply dropped before it was heard (the user went on speaking) is no answer."""
        async with within(timeout_s, "an answer"):
            while True:
                for reply_id, reply in self.speaker.replies.items():
                    if reply.audible_at is not None and reply.audible_at > moment:
                        return reply_id, reply
                for seen in self.seen_of("handled", moment):
                    context = seen.event.data.get("context", {})
                    reply_id = str(context.get("reply_id", ""))
                    if reply_id not in self.speaker.replies and not context.get("interrupted"):
                        return reply_id, None
                await asyncio.sleep(0.01)

    async def talk_over(
        self,
        request: np.ndarray,
        interruption: np.ndarray,
        after_s: float,
        timeout_s: float = 120.0,
    ) -> TalkedOver:
        """Ask for something long, speak over its reply `after_s` in, and let the answer to
        the interruption play out."""
        said = await self.say(request)
        _, story = await self.reply_after(said.voiced_end, timeout_s)
        await asyncio.sleep(after_s)
        still_playing = not story.done.is_set()
        spoken = await self.say(interruption)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(story.done.wait(), 10)
        _, answer = await self.answer_after(spoken.voiced_end, timeout_s)
        if answer is not None:
            async with within(timeout_s, "the answer to play out"):
                await answer.done.wait()
        return TalkedOver(story, spoken, still_playing)

    async def wait_for(self, event_type: str, after: float, timeout_s: float = 60.0) -> Seen:
        async with within(timeout_s, f"a {event_type!r} event"):
            while True:
                for seen in self.seen:
                    if seen.event.type == event_type and seen.at > after:
                        return seen
                await asyncio.sleep(0.01)

    def seen_of(self, event_type: str, after: float = 0.0) -> list[Seen]:
        return [s for s in self.seen if s.event.type == event_type and s.at > after]

    async def stop(self) -> None:
        """End the session; raises the session's error, if it had one. A session that has
        not ended `STOP_WAIT_S` after it was asked to is cancelled."""
        self.mic.stop()
        self.client.stop()
        try:
            if self._task is not None:
                await asyncio.wait([self._task], timeout=STOP_WAIT_S)
                if not self._task.done():
                    self._task.cancel()
                    await asyncio.wait([self._task], timeout=5.0)
                    raise TimeoutError(f"the session did not end {STOP_WAIT_S:.0f} s after stop")
                if not self._task.cancelled() and (error := self._task.exception()):
                    raise error
        finally:
            await self.speaker.close()
