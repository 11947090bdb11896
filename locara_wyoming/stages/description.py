"""What a loaded model tells `describe`: name, origin, version and languages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelDescription:
    name: str
    description: str
    author: str
    url: str
    version: str | None
    languages: list[str] = field(default_factory=list)
