"""Which backend, persona and turn-taking serve a satellite: by its name, then its area,
else defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import TurnTaking
from ..config import LocaraConfig, PersonaConfig

TURN_TAKING_KEYS = (
    "end_of_turn",
    "complete_silence_ms",
    "incomplete_silence_ms",
    "continuation_ms",
)


@dataclass(frozen=True)
class Route:
    backend: str
    persona: PersonaConfig
    turn_taking: TurnTaking


def route(config: LocaraConfig, satellite: str, area: str | None) -> Route:
    by_name = [room for room in config.rooms if room.satellite == satellite]
    by_area = [room for room in config.rooms if area is not None and room.area == area]
    sessions = config.sessions
    backend, persona = sessions.default_backend, None
    turns = {key: getattr(sessions, key) for key in TURN_TAKING_KEYS}
    for room in [*by_area, *by_name]:  # applied in order: a name match beats an area match
        backend = room.backend or backend
        persona = room.persona or persona
        turns.update(
            {key: getattr(room, key) for key in TURN_TAKING_KEYS if getattr(room, key) is not None}
        )
    # A room that shortens only the unfinished wait shortens the finished one with it.
    turns["complete_silence_ms"] = min(turns["complete_silence_ms"], turns["incomplete_silence_ms"])
    return Route(
        backend, config.persona(persona), TurnTaking(**turns, silence_ms=sessions.silence_ms)
    )
