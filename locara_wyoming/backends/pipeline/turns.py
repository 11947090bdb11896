"""Where the user's turns start and end, from per-frame speech probabilities.

A pure state machine (no clock, no I/O): time is counted in frames, so it behaves
the same in a test, a benchmark and a live room.

How long a pause must last to end the turn can be decided while the pause runs
(`settle`): the session asks the end-of-turn model about the words so far at the
pause's start and settles the wait when its judgement comes back (short for a
finished thought, long for an unfinished one). Until then the pause waits the
detector's `silence_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

HYSTERESIS = 0.15


@dataclass(frozen=True)
class SpeechStarted:
    at_ms: int
    """Start of the first voiced frame."""


@dataclass(frozen=True)
class SpeechSustained:
    """Speech has lasted the barge-in guard: it is not a cough or a click."""

    at_ms: int


@dataclass(frozen=True)
class SpeechPaused:
    """A short silence: a good moment to transcribe speculatively, and to judge the turn."""

    speech_end_ms: int
    pause: int
    """Which pause of the stream this is: `settle` names it."""


@dataclass(frozen=True)
class SpeechResumed:
    at_ms: int


@dataclass(frozen=True)
class TurnEnded:
    speech_end_ms: int
    """End of the last voiced frame: where the user stopped speaking."""
    silence_ms: int
    """The silence that ended the turn (0 when it was cut at the length limit)."""


TurnEvent = SpeechStarted | SpeechSustained | SpeechPaused | SpeechResumed | TurnEnded


class _State(Enum):
    SILENT = "silent"
    SPEAKING = "speaking"
    PAUSED = "paused"


class TurnDetector:
    def __init__(
        self,
        frame_ms: float,
        threshold: float,
        silence_ms: int,
        min_speech_ms: int,
        guard_ms: int,
        speculate_ms: int,
    ) -> None:
        self.frame_ms = frame_ms
        self.threshold = threshold
        self._silence_frames = max(1, round(silence_ms / frame_ms))
        self._pause_silence_frames = self._silence_frames
        self._pause = 0
        self._min_speech_frames = max(1, round(min_speech_ms / frame_ms))
        self._guard_frames = max(1, round(guard_ms / frame_ms))
        self._speculate_frames = max(1, round(speculate_ms / frame_ms))
        self._state = _State.SILENT
        self._frame = 0
        self._run = 0  # voiced frames in a row (SILENT) or silent frames in a row (PAUSED)
        self._speech_start = 0
        self._speech_end = 0
        self._sustained = False

    @property
    def in_speech(self) -> bool:
        return self._state is not _State.SILENT

    def _ms(self, frame: int) -> int:
        return round(frame * self.frame_ms)

    def update(self, probability: float, voiced: bool = True) -> list[TurnEvent]:
        """One frame's speech probability; `voiced=False` vetoes it (e.g. it is our own echo)."""
        frame = self._frame
        self._frame += 1
        is_speech = voiced and probability >= self.threshold
        is_silence = not voiced or probability < self.threshold - HYSTERESIS
        events: list[TurnEvent] = []
        if self._state is _State.SILENT:
            self._run = self._run + 1 if is_speech else 0
            if self._run >= self._min_speech_frames:
                self._state = _State.SPEAKING
                self._speech_start = frame - self._run + 1
                self._sustained = False
                events.append(SpeechStarted(self._ms(self._speech_start)))
        elif self._state is _State.PAUSED and is_speech:
            self._state = _State.SPEAKING
            events.append(SpeechResumed(self._ms(frame)))
        elif self._state is _State.SPEAKING and is_silence:
            self._state = _State.PAUSED
            self._speech_end = frame
            self._run = 0
            self._pause += 1
            self._pause_silence_frames = self._silence_frames
        if self._state is _State.PAUSED and is_silence:
            self._run += 1
            if self._run == min(self._speculate_frames, self._pause_silence_frames):
                events.append(SpeechPaused(self._ms(self._speech_end), self._pause))
            if self._run >= self._pause_silence_frames:
                events.append(self._end())
        if (
            self._state is _State.SPEAKING
            and not self._sustained
            and frame + 1 - self._speech_start >= self._guard_frames
        ):
            self._sustained = True
            events.append(SpeechSustained(self._ms(frame + 1)))
        return events

    def settle(self, pause: int, silence_ms: int) -> TurnEnded | None:
        """Pause number `pause` ends the turn after `silence_ms` of silence; if that much has
        passed already, it ends now. A judgement that comes after the user went on (a later
        pause, or speech) changes nothing."""
        if pause != self._pause or self._state is not _State.PAUSED:
            return None
        self._pause_silence_frames = max(1, round(silence_ms / self.frame_ms))
        return self._end() if self._run >= self._pause_silence_frames else None

    def force_end(self) -> TurnEnded:
        """End the turn now (the utterance reached its length limit)."""
        if self._state is _State.SPEAKING:
            self._speech_end = self._frame
            self._run = 0
        return self._end()

    def _end(self) -> TurnEnded:
        ended = TurnEnded(self._ms(self._speech_end), self._ms(self._run))
        self._state = _State.SILENT
        self._run = 0
        return ended

    @property
    def silence_ms(self) -> int:
        """The silence that ends a turn whose pause no judgement has settled."""
        return self._ms(self._silence_frames)
