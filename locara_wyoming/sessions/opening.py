"""Opening a room's session on the backend and persona its route gives."""

from __future__ import annotations

from dataclasses import dataclass

from ..audio_format import PcmFormat
from ..backends.base import HomeControl, RoomSounds, SessionSettings, VoiceSession
from ..backends.registry import Backends
from ..config import LocaraConfig
from ..protocol.session import SessionStarted
from .owner import SessionOwner
from .routing import route


@dataclass(frozen=True)
class OpenedSession:
    session: VoiceSession
    started: SessionStarted


async def open_session(
    backends: Backends,
    config: LocaraConfig,
    session_id: str,
    owner: SessionOwner,
    area: str | None,
    home_control: HomeControl | None,
    sounds: RoomSounds | None = None,
) -> OpenedSession:
    """A session for the satellite; BackendFullError when its backend serves all it can."""
    satellite = owner.satellite
    chosen = route(config, satellite, area)
    backend = backends.get(chosen.backend)
    settings = SessionSettings(
        session_id, satellite, area, chosen.persona, home_control, chosen.turn_taking,
        owner.conversation_id(session_id), sounds,
    )  # fmt: skip
    started = SessionStarted(
        session_id=session_id,
        backend=backend.model_id,
        persona=chosen.persona.name,
        input=PcmFormat(backend.input_rate, 2, 1),
        output=backend.output_format(chosen.persona),
        frame_ms=1000 * backend.frame_samples / backend.input_rate,
    )
    return OpenedSession(await backend.open(settings), started)
