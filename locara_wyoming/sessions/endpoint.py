"""A connection's side of a voice session: `run-pipeline` opens it, uplink events feed it,
`locara-status` lists every session.

The registry owns the session; this is what one connection keeps of it, and what the
connection's dispatch table calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from wyoming.event import Event

from ..backends.registry import Backends
from ..errors import BadRequest, OutOfOrder
from ..protocol import WriteEvent
from ..protocol.session import REQUEST_KEY, STATUS_TYPE, SessionRequest
from ..security.principal import Principal
from .link import SessionEnded, SessionLink
from .owner import SessionOwner
from .played_watch import PlayedWatch
from .registry import SessionRegistry


class SessionEndpoint:
    def __init__(
        self,
        registry: SessionRegistry,
        backends: Backends,
        write: WriteEvent,
        stalled_client_s: Callable[[], float],
        on_not_played: Callable[[str], None],
        principal: Callable[[], Principal],
        host: str,
        disconnect: Callable[[], None],
    ) -> None:
        self._registry = registry
        self._backends = backends
        self._write = write
        self._stalled_client_s = stalled_client_s
        self._on_not_played = on_not_played
        self._principal = principal
        self._host = host
        self._disconnect = disconnect
        self.link: SessionLink | None = None

    def handlers(self) -> dict[str, Callable[[Event], Awaitable[None]]]:
        return {"run-pipeline": self.start, STATUS_TYPE: self.status}

    async def start(self, event: Event) -> None:
        request = SessionRequest.from_run_pipeline(event)
        if request is None:
            raise BadRequest(f"run-pipeline needs a {REQUEST_KEY!r} session request")
        if self.link is not None:
            raise OutOfOrder("a session is already running on this connection")
        watch = None
        if "played" in request.capabilities:
            watch = PlayedWatch(self._stalled_client_s(), self._on_not_played)
        owner = SessionOwner.of(self._principal(), request.name, self._host)
        self.link = await self._registry.open(request, owner, self._write, self._disconnect, watch)

    async def status(self, event: Event) -> None:
        """`locara-status`: the backends' state since a step, and the sessions this
        connection may see: all of them for Home Assistant's proven control connection,
        a satellite's own, and for anyone else only how many there are (names, ids and
        words are nobody else's business)."""
        since = event.data.get("since_step", 0)
        backends = self._backends.status(since if isinstance(since, int) else 0)
        principal = self._principal()
        if principal.is_control:
            sessions = self._registry.status()
        else:
            mine = [self.link] if self.link is not None else []
            sessions = [link.status() for link in mine]
        data = {
            "sessions": sessions,
            "sessions_active": len(self._registry),
            "backends": backends,
        }
        await self._write(Event(type=STATUS_TYPE, data=data))

    def feed(self, event: Event) -> bool:
        """Hand an uplink event to the session; False once the satellite ended it."""
        assert self.link is not None
        try:
            self.link.handle(event)
        except SessionEnded:
            return False
        return True

    async def close(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            await self._registry.close(link)
