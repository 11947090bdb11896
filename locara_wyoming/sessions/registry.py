"""Every live voice session, and the one place they are opened, found, moved and closed.

A session belongs to its satellite's connection, but the registry is what knows them
all: the session limit, a satellite coming back on a new connection (resume: the old
connection's session is closed and its id, and with it the conversation's history,
goes on), finding the sessions of a satellite or an area for an announcement, moving
sessions when a settings change gives their room another backend or persona, and
telling listeners (the control channel) whenever a session opens, changes or closes.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..backends.base import HomeControl
from ..backends.registry import Backends
from ..config import LocaraConfig
from ..errors import Busy
from ..protocol import WriteEvent
from ..protocol.session import SessionRequest
from .link import SatelliteGoneError, SessionLink
from .opening import open_session
from .played_watch import PlayedWatch
from .routing import route

_LOGGER = logging.getLogger(__name__)


class SessionChange(enum.Enum):
    OPENED = "opened"
    CHANGED = "changed"
    CLOSED = "closed"


SessionListener = Callable[[SessionLink, SessionChange], None]
HomeControlFor = Callable[[str, str, str | None], HomeControl]
"""The way to Home Assistant for a session: (session id, satellite, area)."""


class SessionRegistry:
    def __init__(
        self,
        backends: Backends,
        config: Callable[[], LocaraConfig],
        home_control: HomeControlFor,
    ) -> None:
        self._backends = backends
        self._config = config
        self._home_control = home_control
        self._sessions: dict[str, SessionLink] = {}
        self._listeners: list[SessionListener] = []

    def add_listener(self, listener: SessionListener) -> None:
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[SessionLink]:
        return iter(list(self._sessions.values()))

    def status(self) -> list[dict[str, Any]]:
        return [link.status() for link in self]

    def find(self, satellite: str | None = None, area: str | None = None) -> list[SessionLink]:
        """The sessions of `satellite`, and those of every satellite in `area`."""
        return [
            link
            for link in self
            if (satellite is not None and link.satellite == satellite)
            or (area is not None and link.area == area)
        ]

    # -- a session's life -------------------------------------------------------------

    async def open(
        self, request: SessionRequest, write: WriteEvent, played_watch: PlayedWatch | None
    ) -> SessionLink:
        """Open (or resume) the satellite's session and start it; Busy at a limit."""
        config = self._config()
        taken_over = self._sessions.pop(request.resume, None) if request.resume else None
        if taken_over is not None:
            # The satellite came back before its old connection was noticed as gone.
            _LOGGER.info("Session %s: resumed on a new connection", request.resume)
            await taken_over.close()
        limit = config.sessions.max_sessions
        if len(self._sessions) >= limit:
            raise Busy(f"the server is at its limit of {limit} sessions")
        # A resumed session keeps its id, and with it the conversation's history.
        session_id = request.resume or uuid.uuid4().hex
        opened = await open_session(
            self._backends, config, session_id, request.name, request.area,
            self._home_control(session_id, request.name, request.area),
        )  # fmt: skip
        link = SessionLink(
            opened.session, opened.started, write, request.name, request.area,
            on_change=self._changed, played_watch=played_watch,
        )  # fmt: skip
        link.muted = request.name in config.muted
        self._sessions[session_id] = link
        await link.start()
        self._tell(link, SessionChange.OPENED)
        _LOGGER.info(
            "Session %s: %s (%s) on %s as %s",
            session_id, request.name, request.area, opened.started.backend,
            opened.started.persona,
        )  # fmt: skip
        return link

    async def close(self, link: SessionLink) -> None:
        """Close `link`; it leaves the registry unless a resume has already replaced it."""
        await link.close()
        session_id = link.started.session_id
        if self._sessions.get(session_id) is link:
            del self._sessions[session_id]
            self._tell(link, SessionChange.CLOSED)
        _LOGGER.info("Session %s (%s) ended", session_id, link.satellite)

    # -- settings ---------------------------------------------------------------------

    async def apply_settings(self, previous: LocaraConfig, config: LocaraConfig) -> None:
        """Mute and unmute, and move every session whose room's route changed."""
        for link in self:
            link.muted = link.satellite in config.muted
            if route(previous, link.satellite, link.area) != route(
                config, link.satellite, link.area
            ):
                await self._move(link, config)
            self._tell(link, SessionChange.CHANGED)

    async def _move(self, link: SessionLink, config: LocaraConfig) -> None:
        session_id = link.started.session_id
        try:
            opened = await open_session(
                self._backends, config, session_id, link.satellite, link.area,
                self._home_control(session_id, link.satellite, link.area),
            )  # fmt: skip
        except Busy as error:
            _LOGGER.warning("%s stays on %s: %s", link.satellite, link.started.backend, error)
            return
        try:
            await link.move(opened.session, opened.started)
        except SatelliteGoneError as error:
            _LOGGER.info("Not moved: %s", error)
            return
        _LOGGER.info(
            "Session %s (%s) moved to %s as %s",
            session_id, link.satellite, opened.started.backend, opened.started.persona,
        )  # fmt: skip

    # -- notifications ----------------------------------------------------------------

    def _changed(self, link: SessionLink) -> None:
        if self._sessions.get(link.started.session_id) is link:
            self._tell(link, SessionChange.CHANGED)

    def _tell(self, link: SessionLink, change: SessionChange) -> None:
        for listener in self._listeners:
            listener(link, change)
