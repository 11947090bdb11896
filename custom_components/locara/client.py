"""The control connection to a Locara server (docs/protocol.md, "The control channel").

One connection per config entry: it subscribes with the server's token, keeps the
server's state current from the pushes, sends settings and announcements as requests
matched to their answers by id, and hands the server's home requests on. It knows
nothing of Home Assistant: the integration listens to it and answers through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.ping import Ping

_LOGGER = logging.getLogger(__name__)

SUBSCRIBE = "locara-control"
SUBSCRIBED = "locara-control-state"
SETTINGS = "locara-settings"
ANNOUNCE = "locara-announce"
HOME_REQUEST = "locara-home-request"
HOME_ANSWER = "locara-home-answer"
SATELLITE_PUSH = "locara-satellite"
SERVER_PUSH = "locara-server"
SETTINGS_PUSH = "locara-settings-changed"
ERROR = "error"

CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0  # a settings change may start a backend before it answers
PING_AFTER_S = 30.0  # a connection quiet this long is asked for a pong...
PONG_TIMEOUT_S = 10.0  # ...and counted as lost when none comes
RECONNECT_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # after each failed attempt in a row

Listener = Callable[[], None]
HomeRequestHandler = Callable[[dict[str, Any]], None]


class LocaraError(Exception):
    """A control request or connection failed."""


class CannotConnect(LocaraError):
    """The server cannot be reached, or the connection was lost."""


class InvalidAuth(LocaraError):
    """The server refused the token."""


class RequestRefused(LocaraError):
    """The server answered a request with an `error` (a bad setting, no such satellite)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class ServerState:
    """What the server said when we subscribed, kept current by its pushes."""

    server: dict[str, Any]
    settings: dict[str, Any]
    satellites: dict[str, dict[str, Any]]
    options: dict[str, Any]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ServerState:
        return cls(
            server=dict(data.get("server") or {}),
            settings=dict(data.get("settings") or {}),
            satellites={s["name"]: s for s in data.get("satellites") or [] if "name" in s},
            options=dict(data.get("options") or {}),
        )

    @property
    def server_id(self) -> str:
        return str(self.server["server_id"])

    @property
    def name(self) -> str:
        return str(self.server.get("name") or self.server_id)

    @property
    def backends(self) -> list[str]:
        """The backends a room can be given: those offered and those the settings name."""
        named = [self.settings.get("default_backend")]
        named += [room.get("backend") for room in self.settings.get("rooms", [])]
        offered = [*self.options.get("backends", []), *self.server.get("backends", {})]
        return sorted({b for b in (*offered, *named) if isinstance(b, str)})

    @property
    def personas(self) -> list[str]:
        """The personas' names, from the settings (which change), not the options (which don't)."""
        return [persona["name"] for persona in self.settings.get("personas", [])]

    @property
    def voices(self) -> list[str]:
        return list(self.options.get("voices", []))

    @property
    def home_control_modes(self) -> list[str]:
        return list(self.options.get("home_control", ["home_assistant_first", "llm_only"]))


def with_room(
    rooms: list[dict[str, Any]], key: str, name: str, **changes: str | None
) -> list[dict[str, Any]]:
    """`rooms` with the entry whose `key` (`satellite` or `area`) is `name` changed: a
    value of None removes that key, and an entry left with nothing to set is dropped."""
    changed: list[dict[str, Any]] = []
    found = False
    for room in rooms:
        if room.get(key) == name and not found:
            found = True
            room = {**room, **changes}
        changed.append(room)
    if not found:
        changed.append({key: name, **changes})
    cleaned = [{k: v for k, v in room.items() if v is not None} for room in changed]
    return [room for room in cleaned if set(room) - {"satellite", "area"}]


class LocaraClient:
    """The control connection: `connect()`, then `run()` keeps it until cancelled."""

    def __init__(self, host: str, port: int, token: str, name: str = "Home Assistant") -> None:
        self.host = host
        self.port = port
        self.token = token
        self.name = name
        self.state: ServerState | None = None
        self.on_home_request: HomeRequestHandler | None = None
        self._connection: AsyncTcpClient | None = None
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
        """Connect and subscribe: CannotConnect, InvalidAuth, or the server's state."""
        connection = AsyncTcpClient(self.host, self.port)
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

    async def _subscribe(self, connection: AsyncTcpClient) -> tuple[ServerState, list[Event]]:
        """The state the server answers the subscription with, and pushes that overtook it."""
        early: list[Event] = []
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await connection.connect()
                await connection.write_event(
                    Event(SUBSCRIBE, {"token": self.token, "client": self.name})
                )
                while (event := await connection.read_event()) is not None:
                    if event.type in (SUBSCRIBED, ERROR):
                        break
                    early.append(event)
        except (OSError, EOFError, TimeoutError) as error:
            raise CannotConnect(f"cannot reach {self.host}:{self.port}: {error!r}") from error
        if event is None:
            raise CannotConnect(f"{self.host}:{self.port} closed the connection")
        if event.type == ERROR:
            if event.data.get("code") == "unauthorized":
                raise InvalidAuth(str(event.data.get("text", "the token was refused")))
            raise CannotConnect(f"{self.host}:{self.port} refused: {event.data.get('text')}")
        state = ServerState.from_data(event.data)
        if not isinstance(state.server.get("server_id"), str):
            raise CannotConnect(f"{self.host}:{self.port} sent no server id")
        return state, early

    async def run(self) -> None:
        """Handle the server's events until cancelled; reconnect with backoff after a loss.

        Raises InvalidAuth when the server stops accepting the token.
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

    async def _read(self, connection: AsyncTcpClient) -> str:
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
        state = self.state
        assert state is not None
        data = event.data
        if event.type == SATELLITE_PUSH and isinstance(data.get("name"), str):
            state.satellites[data["name"]] = data
        elif event.type == SERVER_PUSH:
            state.server = data
        elif event.type == SETTINGS_PUSH and isinstance(data.get("settings"), dict):
            state.settings = data["settings"]
        elif event.type == HOME_REQUEST:
            if self.on_home_request is not None:
                self.on_home_request(data)
            return
        elif event.type.endswith("-done") or event.type == ERROR:
            request_id = data.get("id") if event.type != ERROR else data.get("request_id")
            answer = self._answers.get(str(request_id))
            if answer is not None and not answer.done():
                answer.set_result(event)
            elif event.type == ERROR:
                _LOGGER.warning("The Locara server reported: %s", data.get("text"))
            return
        else:
            return  # pong, and events of later protocol versions
        self._changed()

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

    async def request(self, event_type: str, **data: Any) -> dict[str, Any]:
        """Send a request with the token and an id; its answer's data, or an exception."""
        connection = self._connection
        if connection is None:
            raise CannotConnect(f"not connected to the Locara server at {self.host}:{self.port}")
        request_id = f"ha-{next(self._ids)}"
        answer: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = answer
        try:
            await connection.write_event(
                Event(event_type, {"token": self.token, "id": request_id, **data})
            )
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                event = await answer
        except (OSError, TimeoutError) as error:
            raise CannotConnect(f"{event_type}: no answer ({error!r})") from error
        finally:
            self._answers.pop(request_id, None)
        if event.type == ERROR:
            code, text = str(event.data.get("code")), str(event.data.get("text"))
            if code == "unauthorized":
                raise InvalidAuth(text)
            raise RequestRefused(code, text)
        return event.data

    async def change_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the named settings; all the settings as they now are."""
        answer = await self.request(SETTINGS, settings=changes)
        settings: dict[str, Any] = answer["settings"]
        if self.state is not None:
            self.state.settings = settings
            self._changed()
        return settings

    async def announce(self, text: str, satellite: str, listen: bool = False) -> list[str]:
        """Speak `text` on a satellite (then open its conversation); the satellites reached."""
        answer = await self.request(ANNOUNCE, text=text, satellite=satellite, listen=listen)
        return list(answer.get("satellites", []))

    async def answer_home(self, request_id: str, handled: bool, speech: str | None) -> None:
        connection = self._connection
        if connection is None:
            raise CannotConnect("the connection closed before Home Assistant answered")
        try:
            await connection.write_event(
                Event(HOME_ANSWER, {"id": request_id, "handled": handled, "speech": speech})
            )
        except OSError as error:
            raise CannotConnect(f"answering a home request: {error!r}") from error


async def _close(connection: AsyncTcpClient) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await connection.disconnect()
