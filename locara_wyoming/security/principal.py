"""Who a connection has proved to be."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.auth import ROLE_CONTROL, ROLE_SATELLITE


@dataclass(frozen=True)
class Principal:
    role: str | None = None
    """`control`, `satellite`, or None: a connection that proved nothing (a stranger)."""
    name: str | None = None

    @property
    def is_control(self) -> bool:
        return self.role == ROLE_CONTROL

    @property
    def satellite(self) -> str | None:
        """The enrolled satellite this connection proved to be, if any."""
        return self.name if self.role == ROLE_SATELLITE else None


STRANGER = Principal()
