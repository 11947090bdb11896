"""Every live voice session, and the one place they are opened, found, moved and closed.

A session belongs to its satellite's connection, but the registry is what knows them
all: who may open one (an enrolled satellite that proved itself, or in open mode an
unenrolled one, never under an enrolled name), the session limit, a satellite coming
back on a new connection (its old session is closed; with `resume` its id, and with it
the conversation's history, goes on, but only for the satellite that owned it), finding
the enrolled satellites of a name or an area for an announcement, moving sessions when
a settings change gives their room another backend or persona, ending a satellite's
session when its enrolment is removed, and telling listeners (the control channel)
whenever a session opens, changes or closes.
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
from ..errors import Busy, Forbidden, Unauthorized
from ..protocol import WriteEvent
from ..protocol.session import SessionRequest
from .link import SatelliteGoneError, SessionLink
from .opening import open_session
from .owner import SessionOwner
from .played_watch import PlayedWatch
from .routing import route

_LOGGER = logging.getLogger(__name__)


class SessionChange(enum.Enum):
    OPENED = "opened"
    CHANGED = "changed"
    CLOSED = "closed"


class _LinkSounds:
    """The room sounds of whichever link holds a session id now (a resume replaces it)."""

    def __init__(self, sessions: dict[str, SessionLink], session_id: str) -> None:
        self._sessions = sessions
        self._session_id = session_id

    def sounding(self) -> bool:
        link = self._sessions.get(self._session_id)
        return link is not None and link.sounding()

    async def hush(self) -> bool:
        link = self._sessions.get(self._session_id)
        return link is not None and await link.hush()


SessionListener = Callable[[SessionLink, SessionChange], None]
HomeControlFor = Callable[[str, str, str | None], HomeControl]
"""The way to Home Assistant for a session: (session id, satellite, area)."""


class SessionRegistry:
    def __init__(
        self,
        backends: Backends,
        config: Callable[[], LocaraConfig],
        home_control: HomeControlFor,
        enrolled: Callable[[str], bool],
    ) -> None:
        self._backends = backends
        self._config = config
        self._home_control = home_control
        self._enrolled = enrolled
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
        """The sessions of enrolled satellites named `satellite` or in `area`: what an
        announcement reaches (an unenrolled one, in open mode, is never spoken to)."""
        return [
            link
            for link in self
            if link.owner.enrolled
            and (
                (satellite is not None and link.satellite == satellite)
                or (area is not None and link.area == area)
            )
        ]

    # -- a session's life -------------------------------------------------------------

    async def open(
        self,
        request: SessionRequest,
        owner: SessionOwner,
        write: WriteEvent,
        disconnect: Callable[[], None],
        played_watch: PlayedWatch | None,
    ) -> SessionLink:
        """Open (or resume) `owner`'s session and start it; a refusal says why."""
        config = self._config()
        self._admit(owner, config)
        resumed = self._sessions.get(request.resume) if request.resume else None
        if resumed is not None and resumed.owner != owner:
            _LOGGER.warning("Session %s: %s may not resume it", request.resume, owner.satellite)
            raise Forbidden("that session is another satellite's")
        for link in self:
            if link.satellite != owner.satellite:
                continue
            if link.owner != owner:
                raise Forbidden(f"a satellite named {owner.satellite!r} is already connected")
            # The satellite came back before its old connection was noticed as gone.
            _LOGGER.info("Session %s: %s is back on a new connection", link.started.session_id,
                         owner.satellite)  # fmt: skip
            link.disconnect()
            await self.close(link)
        limit = config.sessions.max_sessions
        if len(self._sessions) >= limit:
            raise Busy(f"the server is at its limit of {limit} sessions")
        # A resumed session keeps its id, and with it the conversation's history.
        session_id = request.resume or uuid.uuid4().hex
        opened = await open_session(
            self._backends, config, session_id, owner, request.area,
            self._home_control_for(owner, session_id, request.area),
            _LinkSounds(self._sessions, session_id),
        )  # fmt: skip
        link = SessionLink(
            opened.session, opened.started, write, disconnect, owner, request.area,
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

    def _admit(self, owner: SessionOwner, config: LocaraConfig) -> None:
        if owner.enrolled:
            return
        if self._enrolled(owner.satellite):
            raise Forbidden(
                f"{owner.satellite!r} is an enrolled satellite: only it may open its "
                "session, by proving itself with its pairing code"
            )
        if not config.security.open_satellites:
            raise Unauthorized(
                "this server admits only enrolled satellites: enrol this one on the "
                "server (`locara-wyoming satellites add NAME`) and pair it with the code "
                "(`locara-satellite --pair CODE`)"
            )

    def _home_control_for(
        self, owner: SessionOwner, session_id: str, area: str | None
    ) -> HomeControl | None:
        """Home Assistant for an enrolled satellite; nothing for an unenrolled one."""
        if not owner.enrolled:
            return None
        return self._home_control(session_id, owner.satellite, area)

    async def close(self, link: SessionLink) -> None:
        """Close `link`; it leaves the registry unless a resume has already replaced it."""
        await link.close()
        session_id = link.started.session_id
        if self._sessions.get(session_id) is link:
            del self._sessions[session_id]
            self._tell(link, SessionChange.CLOSED)
            _LOGGER.info("Session %s (%s) ended", session_id, link.satellite)

    async def unenrolled(self, satellite: str) -> bool:
        """`satellite`'s enrolment was removed: end its session now; whether it had one."""
        ended = False
        for link in self:
            if link.satellite == satellite and link.owner.enrolled:
                _LOGGER.info("Ending %s's session: it is no longer enrolled", satellite)
                link.disconnect()
                await self.close(link)
                ended = True
        return ended

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
                self._backends, config, session_id, link.owner, link.area,
                self._home_control_for(link.owner, session_id, link.area),
                _LinkSounds(self._sessions, session_id),
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
