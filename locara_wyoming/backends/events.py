"""What a voice session tells its satellite, as typed events (an interruption is one too)."""

from __future__ import annotations

from dataclasses import dataclass

from ..audio_format import PcmFormat


@dataclass(frozen=True)
class VoiceStarted:
    timestamp_ms: int


@dataclass(frozen=True)
class VoiceStopped:
    timestamp_ms: int


@dataclass(frozen=True)
class UserTranscript:
    text: str


@dataclass(frozen=True)
class ReplyStarted:
    reply_id: str


@dataclass(frozen=True)
class ReplyText:
    reply_id: str
    text: str


@dataclass(frozen=True)
class ReplyAudio:
    reply_id: str
    audio: bytes
    format: PcmFormat


@dataclass(frozen=True)
class ReplyFinished:
    """The reply is complete; `text` is all of it (what was heard comes with `played`)."""

    reply_id: str
    text: str
    timings: dict[str, float]


@dataclass(frozen=True)
class ReplyInterrupted:
    """Barge-in: the satellite must drop what it has buffered of this reply."""

    reply_id: str


@dataclass(frozen=True)
class SessionError:
    code: str
    text: str


SessionEvent = (
    VoiceStarted
    | VoiceStopped
    | UserTranscript
    | ReplyStarted
    | ReplyText
    | ReplyAudio
    | ReplyFinished
    | ReplyInterrupted
    | SessionError
)
