"""What every end-to-end model does, whichever library runs it: 80 ms in, 80 ms out.

An engine holds one loaded model with a fixed number of conversation slots. It is
blocking and not thread-safe: one thread (the backend's worker, or a helper
process's main loop) calls it. It imports nothing of the server, so that it runs
in an engine process whose environment has only `wyoming` and numpy besides the
model's own library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Persona:
    """What a persona-conditioned model (PersonaPlex) is told at a conversation's start."""

    text_prompt: str = ""
    voice_prompt: str | None = None
    """A voice prompt file (`.wav`, or `.pt` embeddings) or a name in the model's voices."""


@dataclass(frozen=True)
class FrameOutput:
    pcm: np.ndarray | None
    """One frame of mono float32 at the engine's rate; None while the model's delays fill."""
    text: str
    """The text piece the model produced in this frame, `""` for none (padding)."""


class Engine(ABC):
    sample_rate: int
    frame_samples: int
    slots: int

    @abstractmethod
    def reset(self, slot: int, persona: Persona) -> int:
        """Start a new conversation in `slot`; returns how many prompt tokens it applied."""

    @abstractmethod
    def step(self, frames: dict[int, np.ndarray]) -> dict[int, FrameOutput]:
        """One frame of the user's audio for each slot in `frames`; slots not named
        keep their state untouched. Returns each named slot's output frame."""
