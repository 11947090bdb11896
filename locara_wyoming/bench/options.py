"""What `locara-wyoming bench voice` and `bench soak` measure, and how much of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOAK_WARM_UP_MIN = 10.0
"""`bench soak` runs its script this long by default before its first memory reading:
in a run of 30 minutes, the idle level rose 21.7 MB over the first 10 and 1.8 and 2.3 MB
over the next two (2026-12-02, docs/benchmarks.md)."""
PAUSED_SET_SIZE = 24
"""Utterances in `bench voice`'s paused set (`utterances.PAUSED_PHRASES`)."""


@dataclass(frozen=True)
class VoiceBenchOptions:
    turns: int = 20
    bargeins: int = 5
    sessions: int = 4
    turns_per_session: int = 5
    idle_seconds: float = 10.0
    echo_gain: float = 0.05
    echo_delay_ms: float = 40.0
    compare_stock: bool = False
    utterances: Path | None = None
    paused_turns: int = PAUSED_SET_SIZE
    """Turns of the paused set, in their own session (0: none); the whole set once by default."""
    answer_timeout_s: float = 30.0
    """How long a turn waits for its answer before it counts as timed out."""

    def problems(self) -> list[str]:
        counts = {
            "--turns": self.turns,
            "--sessions": self.sessions,
            "--turns-per-session": self.turns_per_session,
        }
        found = [f"{flag} must be at least 1" for flag, value in counts.items() if value < 1]
        if self.bargeins < 0:
            found.append("--bargeins must be 0 or more")
        if self.paused_turns < 0:
            found.append("--paused-turns must be 0 or more")
        if self.answer_timeout_s <= 0:
            found.append("--answer-timeout must be more than 0")
        if self.idle_seconds <= 0:
            found.append("--idle-seconds must be more than 0")
        if not 0 <= self.echo_gain <= 1:
            found.append("--echo-gain must be between 0 and 1")
        if self.utterances is not None and not self.utterances.is_dir():
            found.append(f"--utterances {self.utterances}: not a folder")
        return found
