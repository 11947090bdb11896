"""One client connection: read events safely, dispatch each by type, answer refusals.

The reader never waits for a model: what needs one runs as a request, in order, on a
task of its own, while the loop goes on reading (pings, the next text chunks, a
disconnect). Each event type has one handler, from the programs in `services/`, the
session endpoint or the control channel. A handler's `LocaraError` is answered with an
`error` event of its code; anything else is a bug of ours, logged with its traceback and
answered as `internal`. Input that breaks the framing also closes this one connection.
Nothing here can disturb another connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from wyoming.error import Error
from wyoming.event import Event
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler

from ..control.service import (
    CONTROL_TYPES,
    HOME_ANSWER,
    ControlClient,
    ControlService,
    waits_on_a_room,
)
from ..errors import Busy, LocaraError, Timeout, UnknownEvent
from ..protocol.auth import TLS_TYPE
from ..protocol.parsing import parse_event
from ..security.handshake import AuthFailed, ServerHandshake
from ..security.principal import Principal
from ..server_context import ServerContext
from ..services.asr import AsrProgram
from ..services.describe import DescribeProgram
from ..services.handle import HandleProgram
from ..services.program import Handler, ProgramLink, Request
from ..services.tts import TtsProgram
from ..sessions.endpoint import SessionEndpoint
from ..sessions.link import UPLINK_TYPES
from .reader import ProtocolError, ReadLimits, read_event

_LOGGER = logging.getLogger(__name__)

MAX_QUEUED_REQUESTS = 4
MAX_WAITING_REQUESTS = 8
"""Announcements (until played) and questions (until answered) waiting on rooms at once,
per connection."""


class WyomingConnection(AsyncEventHandler):
    def __init__(
        self,
        context: ServerContext,
        control: ControlService,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_close: Callable[[WyomingConnection], None] | None = None,
        on_proven: Callable[[WyomingConnection], None] | None = None,
    ) -> None:
        super().__init__(reader, writer)
        self.context = context
        self.peer = writer.get_extra_info("peername")
        self._on_close = on_close
        self._on_proven = on_proven
        self._proven = False
        self._dismissal: asyncio.Task[None] | None = None  # held: the loop holds tasks weakly
        limits = context.config.limits
        self._limits = ReadLimits(
            limits.max_header_bytes, limits.max_data_bytes, limits.max_payload_bytes
        )
        self._requests: asyncio.Queue[tuple[Request, object]] = asyncio.Queue(MAX_QUEUED_REQUESTS)
        self._worker: asyncio.Task[None] | None = None
        self._serving = 0
        """Requests being served now (the queue's, and questions beside it)."""
        self._waiting: set[asyncio.Task[bool]] = set()
        self._last_activity = time.monotonic()
        self._control_service = control
        self.auth = ServerHandshake(
            context.security, reader, writer, self.write_event, self._proved, self.peer
        )
        # The transport changes when TLS starts: abort whichever is current.
        self._control = ControlClient(
            str(self.peer), self.write_event, lambda: self.writer.transport.abort()
        )
        self.session = SessionEndpoint(
            context.sessions, context.backends, self.write_event,
            lambda: context.config.limits.stalled_client_s, self._not_played,
            lambda: self.auth.principal, _host(self.peer), lambda: self.writer.transport.abort(),
        )  # fmt: skip
        self._events = 0
        link = ProgramLink(context, self.write_event, self._enqueue)
        self._tts = TtsProgram(link)
        self._handlers: dict[str, Handler] = {
            "ping": self._pong,
            **self.auth.handlers(),
            **AsrProgram(link).handlers(),
            **self._tts.handlers(),
            **HandleProgram(link).handlers(),
            **DescribeProgram(link).handlers(),
            **self.session.handlers(),
            **dict.fromkeys(CONTROL_TYPES, self._control_event),
        }

    # -- who it is -------------------------------------------------------------------

    @property
    def proven(self) -> bool:
        """Whether the peer proved who it is. Until it has, the connection counts against
        the slots strangers may hold (connection/admission.py)."""
        return self._proven

    def mark_proven(self) -> None:
        """The peer proved who it is: the authentication calls this when it succeeds.
        The connection then holds a slot of its own (and leaves probation)."""
        if self._proven:
            return
        self._proven = True
        if self._on_proven is not None:
            self._on_proven(self)

    def dismiss(self, error: LocaraError) -> None:
        """Tell the peer why, and close the connection (its probation ended)."""
        _LOGGER.warning("%s: %s; closing", self.peer, error.text)
        self._dismissal = asyncio.create_task(self._close_with(error), name=f"close {self.peer}")

    async def _close_with(self, error: LocaraError) -> None:
        await self._send_error(error)
        self.writer.transport.abort()  # even with a peer that does not read

    # -- reading ---------------------------------------------------------------------

    async def run(self) -> None:
        """Like `AsyncEventHandler.run`, with the bounded reader and error answers."""
        self._worker = asyncio.create_task(self._serve_requests(), name=f"requests {self.peer}")
        try:
            while (event := await self._read_or_refuse()) is not None:
                self._last_activity = time.monotonic()
                if not await self.handle_event(event):
                    break
        except (ConnectionError, OSError) as error:
            _LOGGER.debug("%s: connection lost: %s", self.peer, error)
        finally:
            await self.disconnect()
            self.writer.close()
            if self._on_close is not None:
                self._on_close(self)

    async def _read_or_refuse(self) -> Event | None:
        """The next event; None at the end, or after telling a peer why it is dropped."""
        try:
            return await self._next_event()
        except (ProtocolError, Timeout) as error:
            _LOGGER.warning("%s: %s; closing", self.peer, error.text)
            await self._send_error(error)
            return None

    async def _next_event(self) -> Event | None:
        """The next whole event, or Timeout for a client that has gone quiet.

        A session must send something (audio, a ping) every `keepalive_s`; any other
        connection must finish an event within `idle_connection_s` unless one of its
        requests is being served (then it is waiting for us, not idling).
        """
        if self.session.link is not None:  # the hot path: audio 50 times a second
            keepalive = self.context.config.sessions.keepalive_s
            try:
                async with asyncio.timeout(keepalive):
                    return await read_event(self.reader, self._limits)
            except TimeoutError:
                raise Timeout(f"no event within the keep-alive time ({keepalive:g} s)") from None
        if self._control.subscriber is not None:  # Home Assistant's integration: it waits
            return await read_event(self.reader, self._limits)
        limit = self.context.config.limits.idle_connection_s
        read = asyncio.ensure_future(read_event(self.reader, self._limits))
        try:
            while True:
                if self._serving or not self._requests.empty():
                    self._last_activity = time.monotonic()
                left = self._last_activity + limit - time.monotonic()
                if left <= 0:
                    raise Timeout(f"no event within the idle time ({limit:g} s)")
                done, _ = await asyncio.wait([read], timeout=min(left, 1.0))
                if done:
                    return read.result()
        finally:
            read.cancel()

    async def handle_event(self, event: Event) -> bool:
        """Handle one event; False when the connection is to end."""
        request_id = event.data.get("id") if event.type in CONTROL_TYPES else None
        self._events += 1
        try:
            if self.session.link is not None and event.type in UPLINK_TYPES:
                return self.session.feed(event)
            if event.type == TLS_TYPE and self._events > 1:
                raise AuthFailed("locara-tls must be the first event on a connection")
            handler = self._handlers.get(event.type)
            if handler is None:
                raise UnknownEvent(f"unknown event type {event.type!r}")
            await handler(event)
        except LocaraError as error:
            await self._send_error(error, request_id)
            return not error.closes
        except (ConnectionError, OSError):
            raise
        except Exception:
            _LOGGER.exception("%s: handling %r failed", self.peer, event.type)
            await self._send_error(LocaraError(f"handling {event.type!r} failed"), request_id)
        return True

    # -- writing ---------------------------------------------------------------------

    async def write_event(self, event: Event) -> None:
        """Send an event; a client that stops reading is dropped rather than queued for."""
        limit = self.context.config.limits.stalled_client_s
        try:
            async with asyncio.timeout(limit):
                await super().write_event(event)
        except TimeoutError:
            _LOGGER.warning(
                "%s: took over %g s to accept an event (not reading); dropping it (%s)",
                self.peer, limit, self._unsent(),
            )  # fmt: skip
            self.writer.transport.abort()
            raise ConnectionResetError("the client stopped reading") from None

    async def _send_error(self, error: LocaraError, request_id: object = None) -> None:
        event = Error(text=error.text, code=error.code).event()
        if request_id is not None:
            event.data["request_id"] = request_id
        with contextlib.suppress(ConnectionError, OSError):
            await self.write_event(event)

    def _not_played(self, reply_id: str) -> None:
        _LOGGER.warning(
            "%s: reply %s was never reported played (not reading); dropping it (%s)",
            self.peer, reply_id, self._unsent(),
        )  # fmt: skip
        self.writer.transport.abort()

    def _unsent(self) -> str:
        """What the server holds for this client when it drops it: a bounded amount."""
        buffered = self.writer.transport.get_write_buffer_size()
        link = self.session.link
        queued = link.session.queued_audio_bytes if link is not None else 0
        return f"unsent: {buffered} bytes in the write buffer, {queued} of reply audio queued"

    async def disconnect(self) -> None:
        await self._control_service.unsubscribe(self._control)
        await self.session.close()
        self._tts.close()
        for task in [self._worker, *self._waiting]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- small handlers ----------------------------------------------------------------

    def _proved(self, principal: Principal) -> None:
        self._control.principal = principal
        self.mark_proven()

    async def _pong(self, event: Event) -> None:
        await self.write_event(Pong(text=parse_event(Ping, event).text).event())

    async def _control_event(self, event: Event) -> None:
        if event.type == HOME_ANSWER:  # read at once: a session is waiting for it
            await self._control_service.handle(self._control, event)
            return
        request = functools.partial(self._control_request, event)
        if waits_on_a_room(event):  # the queue must not wait while it plays or is answered
            self._start_waiting(request, event.data.get("id"))
            return
        self._enqueue(request, event.data.get("id"))

    async def _control_request(self, event: Event) -> None:
        answer = await self._control_service.handle(self._control, event)
        if answer is not None:
            await self.write_event(answer)

    # -- requests run one at a time, off the reading loop ---------------------------------

    def _enqueue(self, request: Request, request_id: object = None) -> None:
        try:
            self._requests.put_nowait((request, request_id))
        except asyncio.QueueFull:
            raise Busy(
                f"more than {MAX_QUEUED_REQUESTS} requests waiting on this connection"
            ) from None

    async def _serve_requests(self) -> None:
        while True:
            request, request_id = await self._requests.get()
            if not await self._serve(request, request_id):
                return

    def _start_waiting(self, request: Request, request_id: object) -> None:
        """Serve a request that waits on a room beside the queue, at most
        MAX_WAITING_REQUESTS at once."""
        if len(self._waiting) >= MAX_WAITING_REQUESTS:
            raise Busy(
                f"{MAX_WAITING_REQUESTS} announcements and questions already wait on this "
                "connection"
            )
        task = asyncio.create_task(
            self._serve(request, request_id), name=f"announcement {self.peer}"
        )
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _serve(self, request: Request, request_id: object) -> bool:
        """Serve one request, answering its refusal; False when the connection is lost."""
        self._serving += 1
        try:
            await request()
        except LocaraError as error:
            await self._send_error(error, request_id)
        except (ConnectionError, OSError) as error:
            # This connection is lost: close it whole, so that no request waits in
            # a queue that nobody serves.
            _LOGGER.debug("%s: lost while serving a request: %s", self.peer, error)
            self.writer.transport.abort()
            return False
        except Exception as error:  # a model failure ends the request, not the server
            _LOGGER.exception("%s: request failed", self.peer)
            await self._send_error(LocaraError(f"request failed: {error}"), request_id)
        finally:
            self._serving -= 1
            self._last_activity = time.monotonic()
        return True


def _host(peer: object) -> str:
    """The peer's address without its port (a unix socket's peer: "local")."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else "local"
