"""The one interface the server and the benchmark use to talk to any backend."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..audio_format import PcmFormat
from ..config import EndOfTurn, PersonaConfig
from ..errors import Busy
from .events import SessionEvent


class BackendFullError(Busy):
    """The backend serves as many sessions as it can; the message says how many."""


class HomeControl(Protocol):
    """Hands a user's words to Home Assistant."""

    @property
    def available(self) -> bool:
        """Whether Home Assistant can be asked now."""

    async def ask(self, text: str, language: str) -> str | None:
        """The speech to answer with, or None when Home Assistant did not handle the words
        (or gave no answer in time)."""


class RoomSounds(Protocol):
    """What the room sounds besides the session's own replies (an announcement, a ringing
    timer): the words "stop" end it, and go no further."""

    def sounding(self) -> bool:
        """Whether something sounds now."""

    async def hush(self) -> bool:
        """End everything that sounds; whether anything did."""


@dataclass(frozen=True)
class TurnTaking:
    """A room's turn-taking, resolved from `[sessions]` and its `[[rooms]]` entries."""

    end_of_turn: EndOfTurn = "smart-turn"
    complete_silence_ms: int = 200
    incomplete_silence_ms: int = 1600
    continuation_ms: int = 1500
    silence_ms: int = 400


@dataclass(frozen=True)
class SessionSettings:
    session_id: str
    satellite: str
    area: str | None
    persona: PersonaConfig
    home_control: HomeControl | None = None
    turn_taking: TurnTaking = TurnTaking()
    conversation_id: str | None = None
    """The room's conversation in the history; the session id when not given."""
    sounds: RoomSounds | None = None


class VoiceSession(ABC):
    """One room's conversation. Audio goes in at `input_rate`; events come out."""

    @abstractmethod
    def push_audio(self, samples: np.ndarray) -> None:
        """Mono float32 at the backend's input rate. Never blocks: model work runs elsewhere."""

    @abstractmethod
    def events(self) -> AsyncIterator[SessionEvent]:
        """The session's events, in order, until it is closed."""

    @property
    @abstractmethod
    def queued_audio_bytes(self) -> int:
        """Reply audio produced and not yet taken from `events`: what waits for the satellite."""

    @abstractmethod
    async def interrupt(self) -> None:
        """Stop the current reply now (as if the user had spoken over it)."""

    @abstractmethod
    def report_played(self, reply_id: str, samples: int) -> None:
        """The satellite played `samples` of the reply; the history keeps only what was heard."""

    def next_words(self) -> asyncio.Future[str] | None:
        """The user's next turn, transcribed and kept out of the conversation (a question
        Home Assistant asked): it gets no reply and no place in the history. The future
        fails with ConnectionError when the session closes first; the caller cancels it
        to stop waiting. None: this backend hears no words (an end-to-end model)."""
        return None

    @abstractmethod
    def announced(
        self, text: str, extra_system_prompt: str | None = None, interrupted: bool = False
    ) -> None:
        """The room heard `text` announced (`interrupted`: cut short) and is now asked to
        answer it: the conversation keeps it as the persona's words, and
        `extra_system_prompt` for the persona."""

    @abstractmethod
    async def close(self) -> None: ...


class VoiceBackend(ABC):
    """A loaded model (or chain of models) that serves many sessions at once."""

    model_id: str
    input_rate: int
    frame_samples: int
    """The backend's natural input frame; satellites may send any size."""

    @abstractmethod
    def output_format(self, persona: PersonaConfig) -> PcmFormat: ...

    @abstractmethod
    async def open(self, settings: SessionSettings) -> VoiceSession:
        """A new session; BackendFullError when the backend serves all it can."""

    @abstractmethod
    async def start(self) -> None:
        """Load and warm what the backend needs before its first session."""

    def status(self, since_step: int = 0) -> dict[str, Any]:
        """What `locara-status` reports of the backend (timings after step `since_step`)."""
        return {}

    @property
    def healthy(self) -> bool:
        """False while the backend's model is failed and being brought back."""
        return True

    @abstractmethod
    async def close(self) -> None:
        """Release the backend's models and processes."""
