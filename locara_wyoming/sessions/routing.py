"""Which backend and persona serve a satellite: by its name, then its area, else defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LocaraConfig, PersonaConfig


@dataclass(frozen=True)
class Route:
    backend: str
    persona: PersonaConfig


def route(config: LocaraConfig, satellite: str, area: str | None) -> Route:
    by_name = [room for room in config.rooms if room.satellite == satellite]
    by_area = [room for room in config.rooms if area is not None and room.area == area]
    backend, persona = config.sessions.default_backend, None
    for room in [*by_area, *by_name]:  # applied in order: a name match beats an area match
        backend = room.backend or backend
        persona = room.persona or persona
    return Route(backend, config.persona(persona))
