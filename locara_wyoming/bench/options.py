"""What `locara-wyoming bench voice` and `bench soak` measure, and how much of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOAK_WARM_UP_ROUNDS = 10
"""`bench soak` warms up for at most this many rounds by default (about 1.5 minutes each
with 4 rooms), fewer once the server's memory has settled."""


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

    def problems(self) -> list[str]:
        counts = {
            "--turns": self.turns,
            "--sessions": self.sessions,
            "--turns-per-session": self.turns_per_session,
        }
        found = [f"{flag} must be at least 1" for flag, value in counts.items() if value < 1]
        if self.bargeins < 0:
            found.append("--bargeins must be 0 or more")
        if self.idle_seconds <= 0:
            found.append("--idle-seconds must be more than 0")
        if not 0 <= self.echo_gain <= 1:
            found.append("--echo-gain must be between 0 and 1")
        if self.utterances is not None and not self.utterances.is_dir():
            found.append(f"--utterances {self.utterances}: not a folder")
        return found
