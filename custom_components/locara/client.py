"""The control connection to a Locara server (docs/protocol.md, "The control channel").

One connection per config entry: it starts TLS and proves, with the server's token, that
both ends are who they say (`auth.py`, role `control`: the token itself never crosses
the network), subscribes, keeps the server's state current from the pushes, sends
settings, announcements and enrolments as requests matched to their answers by id, and
hands the server's home requests on. It knows nothing of Home Assistant: the
integration listens to it and answers through it. The events themselves are defined in
`protocol.py`, the server's own definition.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from wyoming.error import Error
from wyoming.event import Event
from wyoming.ping import Ping

from .auth import ROLE_CONTROL, AuthError, SecureTcpClient, token_key
from .protocol import (
    ANSWER_TIMEOUT_S,
    Announce,
    AnnounceDone,
    ChangeSettings,
    ControlEventError,
    ControlState,
    Enrol,
    EnrolDone,
    HomeAnswer,
    HomeRequest,
    Options,
    SatelliteRecord,
    ServerStatus,
    SetMuted,
    SetRoom,
    SettingsChanged,
    SettingsDone,
    Subscribe,
    TimerDone,
    TimerEvent,
    TimerInfo,
    Unenrol,
    UnenrolDone,
)

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0  # a settings change may start a backend before it answers
PING_AFTER_S = 30.0  # a connection quiet this long is asked for a pong...
PONG_TIMEOUT_S = 10.0  # ...and counted as lost when none comes
RECONNECT_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # after each failed attempt in a row
MAX_QUESTION_S = 300.0  # the longest audio a server plays for one announcement

Listener = Callable[[], None]
HomeRequestHandler = Callable[[HomeRequest], None]
Request = ChangeSettings | SetMuted | SetRoom | Announce | Enrol | Unenrol | TimerEvent
Answer = TypeVar("Answer")


class LocaraClientError(Exception):
    """A control request or connection failed."""


class CannotConnect(LocaraClientError):
    """The server cannot be reached, or the connection was lost."""


class InvalidAuth(LocaraClientError):
    """The server could not prove it holds the token, or refused ours: the token is
    wrong, or this is not our Locara server. Both look the same from here, on purpose:
    the proofs are checked before ours is sent."""


class RequestRefused(LocaraClientError):
    """The server answered a request with an `error` (a bad setting, no such satellite)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class ServerState:
    """What the server said when we subscribed, kept current by its pushes."""

    server: ServerStatus
    settings: dict[str, Any]
    satellites: dict[str, SatelliteRecord]
    options: Options

    @classmethod
    def subscribed(cls, state: ControlState) -> ServerState:
        satellites = {satellite.name: satellite for satellite in state.satellites}
        return cls(state.server, state.settings, satellites, state.options)

    @property
    def server_id(self) -> str:
        return self.server.server_id

    @property
    def name(self) -> str:
        return self.server.name or self.server_id

    @property
    def backends(self) -> list[str]:
        """The backends a room can be given: those offered and those the settings name."""
        named = [self.settings.get("default_backend")]
        named += [room.get("backend") for room in self.settings.get("rooms", [])]
        offered = [*self.options.backends, *self.server.backends]
        return sorted({b for b in (*offered, *named) if isinstance(b, str)})

    @property
    def personas(self) -> list[str]:
        """The personas' names, from the settings (which change), not the options (which don't)."""
        return [persona["name"] for persona in self.settings.get("personas", [])]

    @property
    def voices(self) -> list[str]:
        return list(self.options.voices)

    @property
    def home_control_modes(self) -> list[str]:
        return list(self.options.home_control)


class LocaraClient:
    """The control connection: `connect()`, then `run()` keeps it until cancelled."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        name: str = "Home Assistant",
        *,
        server_id: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.name = name
        self.server_id = server_id
        """The id the server must prove itself under (pinned); None: any."""
        self.fingerprint = fingerprint
        """Its TLS certificate's fingerprint when it last proved itself, kept up to date."""
        self.state: ServerState | None = None
        self.on_home_request: HomeRequestHandler | None = None
        self._connection: _ControlConnection | None = None
        self._answers: dict[str, asyncio.Future[Event]] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Listener] = []

    @property
    def connected(self) -> bool:
        return self._connection is not None

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` whenever the state or the connection changes; returns its remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- the connection -------------------------------------------------------------

    async def connect(self) -> ServerState:
        """Connect, prove both ends and subscribe: CannotConnect, InvalidAuth, or the
        server's state."""
        connection = _ControlConnection(self.host, self.port)
        try:
            state, early = await self._subscribe(connection)
        except BaseException:  # cancelled too: the socket is closed either way
            await _close(connection)
            raise
        self._connection, self.state = connection, state
        for pushed in early:
            self._handle(pushed)
        self._changed()
        return state

    async def _subscribe(self, connection: _ControlConnection) -> tuple[ServerState, list[Event]]:
        """The state the server answers the subscription with, and pushes that overtook it."""
        early: list[Event] = []
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await connection.connect()
                await self._authenticate(connection)
                await connection.write_event(Subscribe(client=self.name).event())
                while (event := await connection.read_event()) is not None:
                    if ControlState.is_type(event.type) or Error.is_type(event.type):
                        break
                    early.append(event)
        except (OSError, EOFError, TimeoutError) as error:
            raise CannotConnect(f"cannot reach {self.host}:{self.port}: {error!r}") from error
        if event is None:
            raise CannotConnect(f"{self.host}:{self.port} closed the connection")
        if Error.is_type(event.type):
            raise CannotConnect(f"{self.host}:{self.port} refused: {event.data.get('text')}")
        try:
            state = ControlState.from_event(event)
        except ControlEventError as error:
            where = f"{self.host}:{self.port}"
            raise CannotConnect(f"{where} sent a state we cannot read: {error}") from error
        return ServerState.subscribed(state), early

    async def _authenticate(self, connection: _ControlConnection) -> None:
        """Start TLS and prove both ends with the token; InvalidAuth when the server cannot
        prove it holds it (or is not the pinned server), CannotConnect when it hung up or
        refused for another reason (busy, not a Locara server that speaks TLS)."""
        where = f"{self.host}:{self.port}"
        try:
            proven = await connection.authenticate(
                ROLE_CONTROL, self.name, token_key(self.token), server_id=self.server_id
            )
        except AuthError as error:
            if connection.hung_up or error.code not in (None, "unauthorized"):
                raise CannotConnect(f"{where}: {error}") from error
            raise InvalidAuth(
                f"the token is wrong, or {where} is not your Locara server: {error}"
            ) from error
        # The proofs are bound to the certificate this end sees: a server that proves the
        # token with a new certificate holds the token, and its certificate is pinned anew.
        if self.fingerprint is not None and proven.fingerprint != self.fingerprint:
            _LOGGER.warning(
                "The Locara server %s at %s shows a new TLS certificate (%s…, pinned "
                "%s…); it proved it holds the token, so the new one is pinned",
                proven.server_id, where, proven.fingerprint[:16], self.fingerprint[:16],
            )  # fmt: skip
        self.server_id, self.fingerprint = proven.server_id, proven.fingerprint

    async def run(self) -> None:
        """Handle the server's events until cancelled; reconnect with backoff after a loss.

        Raises InvalidAuth when the server can no longer prove it holds the token.
        """
        failures = 0
        try:
            while True:
                if self._connection is None:
                    try:
                        await self.connect()
                    except CannotConnect as error:
                        delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                        failures += 1
                        _LOGGER.debug("%s; trying again in %g s", error, delay)
                        await asyncio.sleep(delay)
                        continue
                    _LOGGER.info("Connected to the Locara server at %s:%s", self.host, self.port)
                    failures = 0
                connection = self._connection
                assert connection is not None
                try:
                    reason = await self._read(connection)
                except (OSError, EOFError) as error:
                    reason = repr(error)
                _LOGGER.warning(
                    "Lost the connection to the Locara server at %s:%s (%s); reconnecting",
                    self.host, self.port, reason,
                )  # fmt: skip
                await self._drop()
        finally:
            await self._drop()

    async def _read(self, connection: _ControlConnection) -> str:
        """Handle events until the connection ends; why it ended."""
        while True:
            # The read is not cancelled by a timeout, which could cut an event in half.
            read = asyncio.ensure_future(connection.read_event())
            try:
                done, _ = await asyncio.wait({read}, timeout=PING_AFTER_S)
                if not done:
                    await connection.write_event(Ping().event())
                    done, _ = await asyncio.wait({read}, timeout=PONG_TIMEOUT_S)
                    if not done:
                        return f"no answer to a ping within {PONG_TIMEOUT_S:g} s"
            finally:
                read.cancel()
            event = read.result()
            if event is None:
                return "closed by the server"
            self._handle(event)

    def _handle(self, event: Event) -> None:
        try:
            changed = self._handle_checked(event)
        except ControlEventError as error:
            _LOGGER.warning("Ignored an event from the Locara server: %s", error)
            return
        if changed:
            self._changed()

    def _handle_checked(self, event: Event) -> bool:
        """Handle a pushed event or an answer; whether the state changed."""
        state = self.state
        assert state is not None
        if SatelliteRecord.is_type(event.type):
            record = SatelliteRecord.from_event(event)
            state.satellites[record.name] = record
        elif ServerStatus.is_type(event.type):
            state.server = ServerStatus.from_event(event)
        elif SettingsChanged.is_type(event.type):
            changed = SettingsChanged.from_event(event)
            state.settings, state.options = changed.settings, changed.options
        elif HomeRequest.is_type(event.type):
            if self.on_home_request is not None:
                self.on_home_request(HomeRequest.from_event(event))
            return False
        elif event.type.endswith("-done") or Error.is_type(event.type):
            # Matched by id here, read by the request that waits for it.
            key = "request_id" if Error.is_type(event.type) else "id"
            answer = self._answers.get(str(event.data.get(key)))
            if answer is not None and not answer.done():
                answer.set_result(event)
            elif Error.is_type(event.type):
                _LOGGER.warning("The Locara server reported: %s", event.data.get("text"))
            return False
        else:
            return False  # pong, and events of later protocol versions
        return True

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(CannotConnect("the connection to the server was lost"))
        if connection is not None:
            self._changed()
            await _close(connection)

    async def close(self) -> None:
        await self._drop()

    # -- requests -------------------------------------------------------------------

    def _request_id(self) -> str:
        return f"ha-{next(self._ids)}"

    async def _request(
        self,
        request: Request,
        answer_of: Callable[[Event], Answer],
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> Answer:
        """Send `request` (with an id); its answer, or an exception."""
        connection = self._connection
        if connection is None:
            raise CannotConnect(f"not connected to the Locara server at {self.host}:{self.port}")
        request_id = request.request_id
        assert request_id is not None, "a request waits for an answer by its id"
        event = request.event()
        answer: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = answer
        try:
            await connection.write_event(event)
            async with asyncio.timeout(timeout_s):
                answered = await answer
        except (OSError, TimeoutError) as error:
            raise CannotConnect(f"{event.type}: no answer ({error!r})") from error
        finally:
            self._answers.pop(request_id, None)
        if Error.is_type(answered.type):
            raise RequestRefused(str(answered.data.get("code")), str(answered.data.get("text")))
        try:
            return answer_of(answered)
        except ControlEventError as error:
            raise LocaraClientError(f"{event.type}: an answer we cannot read: {error}") from error

    async def _change(self, request: ChangeSettings | SetMuted | SetRoom) -> dict[str, Any]:
        """All the settings as they are after `request`."""
        settings = (await self._request(request, SettingsDone.from_event)).settings
        if self.state is not None:
            self.state.settings = settings
            self._changed()
        return settings

    async def change_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the named settings whole; all the settings as they now are."""
        return await self._change(ChangeSettings(request_id=self._request_id(), settings=changes))

    async def set_muted(self, satellite: str, muted: bool) -> dict[str, Any]:
        """Mute one satellite, or unmute it, whatever the others are changed to meanwhile."""
        return await self._change(
            SetMuted(request_id=self._request_id(), satellite=satellite, muted=muted)
        )

    async def set_room(
        self,
        changes: dict[str, str | None],
        *,
        satellite: str | None = None,
        area: str | None = None,
    ) -> dict[str, Any]:
        """Change some of one room entry's settings (the satellite's or the area's): a value
        of None clears that key back to what the area or the defaults give."""
        return await self._change(
            SetRoom(
                request_id=self._request_id(),
                satellite=satellite,
                area=area,
                changes=changes,
            )
        )

    async def announce(
        self,
        text: str,
        satellite: str,
        listen: bool = False,
        *,
        chime: bytes = b"",
        media: bytes = b"",
        extra_system_prompt: str | None = None,
    ) -> list[str]:
        """Speak `text` on a satellite, or play `media` (an audio file) showing `text`,
        after `chime` (an audio file) where given; then open its conversation when
        `listen`, its persona told `extra_system_prompt`. Returns once it has played:
        the satellites reached."""
        request = Announce(
            request_id=self._request_id(),
            text=text,
            satellite=satellite,
            listen=listen,
            chime=chime,
            media=media,
            extra_system_prompt=extra_system_prompt,
        )
        # The server answers once the announcement has played.
        wait_s = REQUEST_TIMEOUT_S + MAX_QUESTION_S
        return (await self._request(request, AnnounceDone.from_event, wait_s)).satellites

    async def ask(
        self,
        text: str,
        satellite: str,
        *,
        chime: bytes = b"",
        media: bytes = b"",
        timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> str:
        """Ask a question as `announce` says it; the room's next words, which its own
        conversation never sees. RequestRefused `no-answer` after `timeout_s` of silence
        once the question has played, `not-found` when the satellite leaves first."""
        request = Announce(
            request_id=self._request_id(),
            text=text,
            satellite=satellite,
            chime=chime,
            media=media,
            answer=True,
            answer_timeout_s=timeout_s,
        )
        # The server times the answer out itself, once the question has played.
        wait_s = REQUEST_TIMEOUT_S + MAX_QUESTION_S + timeout_s
        done = await self._request(request, AnnounceDone.from_event, wait_s)
        if done.answer is None:
            raise LocaraClientError(f"{satellite}: the server sent no answer")
        return done.answer

    async def enrol(self, name: str) -> EnrolDone:
        """Enrol a satellite (or give it a new key): its name and pairing code."""
        request = Enrol(request_id=self._request_id(), name=name)
        return await self._request(request, EnrolDone.from_event)

    async def unenrol(self, name: str) -> UnenrolDone:
        """Remove a satellite's enrolment; whether its live session was ended."""
        request = Unenrol(request_id=self._request_id(), name=name)
        return await self._request(request, UnenrolDone.from_event)

    async def timer(self, satellite: str, change: str, timer: TimerInfo) -> bool:
        """Tell the server of a satellite's timer event; whether the satellite has it now."""
        request = TimerEvent(
            request_id=self._request_id(), satellite=satellite, change=change, timer=timer
        )
        return (await self._request(request, TimerDone.from_event)).delivered

    async def answer_home(self, request_id: str, handled: bool, speech: str | None) -> None:
        connection = self._connection
        if connection is None:
            raise CannotConnect("the connection closed before Home Assistant answered")
        try:
            await connection.write_event(HomeAnswer(request_id, handled, speech).event())
        except OSError as error:
            raise CannotConnect(f"answering a home request: {error!r}") from error


async def _close(connection: _ControlConnection) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await connection.disconnect()


class _ControlConnection(SecureTcpClient):
    """The connection, noting whether the server hung up: during the exchange, that is a
    lost connection, not a server that failed to prove it holds the token."""

    hung_up = False

    async def read_event(self) -> Event | None:
        event = await super().read_event()
        self.hung_up = event is None
        return event
