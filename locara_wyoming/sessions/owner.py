"""Whose a session is: an enrolled satellite that proved itself, or, on a server in open
mode (`security.open_satellites`), an unenrolled one known only by the name it gave and
the address it came from."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Forbidden
from ..security.principal import Principal


@dataclass(frozen=True)
class SessionOwner:
    satellite: str
    enrolled: bool
    host: str | None = None
    """Where an unenrolled satellite connected from; None for an enrolled one, which is
    the same satellite from wherever it proves itself."""

    @staticmethod
    def of(principal: Principal, name: str, host: str) -> SessionOwner:
        """Who opens a session as `name`; Forbidden when the connection proved itself as
        another satellite."""
        proven = principal.satellite
        if proven is None:
            return SessionOwner(name, enrolled=False, host=host)
        if proven != name:
            raise Forbidden(f"this connection proved itself as {proven!r}, not {name!r}")
        return SessionOwner(name, enrolled=True)

    def conversation_id(self, session_id: str) -> str:
        """The room's conversation in the history: its owner's, never a `handle`
        conversation's (those are `handle:…`), never another satellite's."""
        kind = "enrolled" if self.enrolled else "open"
        return f"room:{kind}:{self.satellite}:{session_id}"
