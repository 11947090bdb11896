"""Locara's voice-session events: what the standard Wyoming events do not cover.

A session opens with the standard `run-pipeline` (asr → tts, restart on end)
whose data carries a `locara` object; the server answers `locara-session` with
the session's parameters. `locara-flush` tells the satellite to drop the reply
audio it holds (barge-in); the satellite's standard `played` carries `reply_id`
and `samples`. `locara-state` is the satellite telling what it is doing, and
`locara-status` asks the server for its sessions. Everything else is standard
Wyoming.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wyoming.event import Event, Eventable

from ..audio_format import PcmFormat
from ..errors import BadRequest
from .parsing import check_text

PROTOCOL_VERSION = 1
REQUEST_KEY = "locara"
_SESSION_TYPE = "locara-session"
_FLUSH_TYPE = "locara-flush"
_STATE_TYPE = "locara-state"
STATUS_TYPE = "locara-status"
LISTEN_TYPE = "locara-listen"
"""The server asks the satellite to open its conversation (after an announcement)."""
SATELLITE_STATES = ("idle", "listening", "thinking", "speaking")
"""What a satellite may say it is doing; `connecting` it cannot say."""


class SessionRequestError(BadRequest, ValueError):
    """A `run-pipeline` whose session request is missing or malformed."""


def _format_dict(audio: PcmFormat) -> dict[str, int]:
    return {"rate": audio.rate, "width": audio.width, "channels": audio.channels}


def _format_from(data: Any, key: str) -> PcmFormat:
    if not isinstance(data, dict):
        raise SessionRequestError(f"{key} must be an object with rate, width and channels")
    try:
        return PcmFormat(int(data["rate"]), int(data["width"]), int(data["channels"]))
    except (KeyError, TypeError, ValueError):
        raise SessionRequestError(f"{key} must have integer rate, width and channels") from None


@dataclass(frozen=True)
class SessionRequest:
    """The `locara` object of a satellite's `run-pipeline`."""

    name: str
    area: str | None = None
    protocol: int = PROTOCOL_VERSION
    capabilities: list[str] = field(default_factory=list)
    resume: str | None = None
    """The session id this satellite had before its connection dropped."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "name": self.name,
            "area": self.area,
            "capabilities": self.capabilities,
            "resume": self.resume,
        }

    @staticmethod
    def from_run_pipeline(event: Event) -> SessionRequest | None:
        """The request in a `run-pipeline`, or None for a plain (non-Locara) one."""
        data = event.data.get(REQUEST_KEY)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise SessionRequestError(f"run-pipeline {REQUEST_KEY!r} must be an object")
        protocol = data.get("protocol", PROTOCOL_VERSION)
        if protocol != PROTOCOL_VERSION:
            raise SessionRequestError(
                f"session protocol {protocol!r} is not supported "
                f"(this server speaks {PROTOCOL_VERSION})"
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SessionRequestError("a session needs the satellite's name")
        area = data.get("area")
        capabilities = data.get("capabilities", [])
        if area is not None and not isinstance(area, str):
            raise SessionRequestError("area must be a string")
        if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
            raise SessionRequestError("capabilities must be a list of strings")
        for key, text in [
            ("name", name),
            ("area", area or ""),
            *(("capabilities", c) for c in capabilities),
        ]:
            # Pushed to Home Assistant and logged: a lone surrogate once stopped the pushes.
            check_text(text, f"run-pipeline {key}", SessionRequestError)
        resume = data.get("resume")
        if resume is not None and not (
            isinstance(resume, str) and len(resume) == 32 and resume.isalnum()
        ):
            raise SessionRequestError("resume must be a session id the server gave")
        return SessionRequest(
            name=name.strip(), area=area, capabilities=capabilities, resume=resume
        )


@dataclass(frozen=True)
class SessionStarted(Eventable):
    """The server's answer: how this session will run."""

    session_id: str
    backend: str
    persona: str
    input: PcmFormat
    """The rate the backend works at; satellites may send any format."""
    output: PcmFormat
    """The format of the reply audio."""
    frame_ms: float
    protocol: int = PROTOCOL_VERSION

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == _SESSION_TYPE

    def event(self) -> Event:
        return Event(
            type=_SESSION_TYPE,
            data={
                "protocol": self.protocol,
                "session_id": self.session_id,
                "backend": self.backend,
                "persona": self.persona,
                "input": _format_dict(self.input),
                "output": _format_dict(self.output),
                "frame_ms": self.frame_ms,
            },
        )

    @staticmethod
    def from_event(event: Event) -> SessionStarted:
        data = event.data
        return SessionStarted(
            session_id=str(data["session_id"]),
            backend=str(data["backend"]),
            persona=str(data["persona"]),
            input=_format_from(data["input"], "input"),
            output=_format_from(data["output"], "output"),
            frame_ms=float(data["frame_ms"]),
            protocol=int(data["protocol"]),
        )


@dataclass(frozen=True)
class Flush(Eventable):
    """Barge-in: drop every sample of this reply not yet played, now."""

    reply_id: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == _FLUSH_TYPE

    def event(self) -> Event:
        return Event(type=_FLUSH_TYPE, data={"reply_id": self.reply_id})

    @staticmethod
    def from_event(event: Event) -> Flush:
        return Flush(reply_id=str(event.data["reply_id"]))


@dataclass(frozen=True)
class PlayedReport:
    """The data a satellite adds to the standard `played` event."""

    reply_id: str
    samples: int

    def event(self) -> Event:
        return Event(type="played", data={"reply_id": self.reply_id, "samples": self.samples})

    @staticmethod
    def from_event(event: Event) -> PlayedReport:
        reply_id, samples = event.data.get("reply_id"), event.data.get("samples")
        if not isinstance(reply_id, str) or not isinstance(samples, int) or samples < 0:
            raise SessionRequestError("played needs a string reply_id and whole samples >= 0")
        return PlayedReport(reply_id, samples)


@dataclass(frozen=True)
class SatelliteState(Eventable):
    """The satellite says what it is doing (`idle` waits for its wake word)."""

    state: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == _STATE_TYPE

    def event(self) -> Event:
        return Event(type=_STATE_TYPE, data={"state": self.state})

    @staticmethod
    def from_event(event: Event) -> SatelliteState:
        state = event.data.get("state")
        if state not in SATELLITE_STATES:
            raise SessionRequestError(f"state must be one of {', '.join(SATELLITE_STATES)}")
        return SatelliteState(str(state))
