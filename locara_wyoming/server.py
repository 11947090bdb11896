"""The server's life: load and warm the models, listen, advertise, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from urllib.parse import urlparse

from wyoming.error import Error
from wyoming.event import async_write_event
from wyoming.server import AsyncEventHandler, AsyncServer, AsyncStdioServer

from .backends.registry import Backends
from .config import LocaraConfig
from .connection.admission import Admission, peer_address
from .connection.handler import WyomingConnection
from .control.service import ControlService
from .conversation.agent import ConversationAgent
from .conversation.history import ConversationStore
from .loop_watch import LoopWatch
from .memory_release import MemoryReleaser
from .security.enrolment import EnrolmentWatch
from .security.server_security import ServerSecurity
from .server_context import ServerContext
from .sessions.registry import SessionRegistry
from .stages.loading import load_stages
from .zeroconf_advertiser import ZeroconfAdvertiser, advertised_address, instance_name

_LOGGER = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5.0


class RefusedConnection(AsyncEventHandler):
    """Answers a connection the server will not serve with an error, and closes it."""

    def __init__(
        self, code: str, reason: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer)
        self.code = code
        self.reason = reason

    async def handle_event(self, event: object) -> bool:
        return False

    async def run(self) -> None:
        _LOGGER.warning("Refusing %s: %s", self.writer.get_extra_info("peername"), self.reason)
        with contextlib.suppress(ConnectionError, OSError):
            await async_write_event(Error(text=self.reason, code=self.code).event(), self.writer)
        self.writer.close()


def _warn_about_open_satellites(config: LocaraConfig, security: ServerSecurity) -> None:
    """Say at start how satellites get in, and what to run when none can."""
    enrolled = len(security.satellites.satellites())
    if config.security.open_satellites:
        _LOGGER.warning(
            "security.open_satellites is on: any device on the network may open a voice "
            "session under a name that is not enrolled (without home control); enrol "
            "your satellites and turn it off (docs/security.md)"
        )
    elif enrolled == 0:
        _LOGGER.warning(
            "No satellite is enrolled, so no room can open a voice session. Enrol each "
            "one: `locara-wyoming satellites add NAME` here, then `locara-satellite --pair "
            "CODE` on the satellite (docs/security.md). Home Assistant's own Wyoming "
            "integration (asr, tts, handle) needs nothing."
        )
    else:
        _LOGGER.info("%d satellite(s) enrolled", enrolled)


def client_allowed(peer: object, allowed: list[IPv4Network | IPv6Network] | None) -> bool:
    """Whether a TCP peer's address is in the allow-list (no list, or a unix socket: yes)."""
    if allowed is None or not isinstance(peer, tuple):
        return True
    try:
        address = ip_address(peer[0])
    except ValueError:
        return False
    return any(address in network for network in allowed)


class LocaraServer:
    def __init__(self, config: LocaraConfig) -> None:
        self.config = config
        self.connections: set[WyomingConnection] = set()
        self._all_closed = asyncio.Event()
        self.data_dir = Path(config.server.data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._context: ServerContext | None = None
        self._control: ControlService | None = None
        self._server = AsyncServer.from_uri(config.server.uri)
        self._allowed = config.server.allowed_networks()
        self._admission = Admission(config.limits)
        self.name = instance_name(config.server.zeroconf_name)

    def _connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> AsyncEventHandler:
        assert self._context is not None and self._control is not None
        peer = writer.get_extra_info("peername")
        if not client_allowed(peer, self._allowed):
            return RefusedConnection(
                "forbidden", "this address is not in server.allowed_clients", reader, writer
            )
        address = peer_address(peer)
        refusal = self._admission.refusal(address)
        if refusal is not None:
            return RefusedConnection("busy", refusal, reader, writer)
        connection = WyomingConnection(
            self._context, self._control, reader, writer,
            on_close=self._closed, on_proven=self._admission.proven,
        )  # fmt: skip
        self.connections.add(connection)
        self._admission.admit(connection, address)
        return connection

    async def run(self) -> None:
        _LOGGER.info("Data directory: %s", self.data_dir)
        control = ControlService.load(self.data_dir, self.name)
        security = ServerSecurity.load(self.data_dir, control.identity)
        config = self.config = control.settings_file.apply_to(self.config)

        stages = await load_stages(config)
        store = ConversationStore(
            config.limits.history_turns,
            config.limits.history_ttl_s,
            config.limits.max_conversations,
        )
        agent = ConversationAgent(stages.llm, store)
        backends = Backends(stages, agent, config)
        # The registry reads the configuration that is live when a session opens.
        sessions = SessionRegistry(
            backends, lambda: context.config, control.home_control,
            lambda name: name in security.satellites,
        )  # fmt: skip
        context = self._context = ServerContext(config, stages, agent, backends, sessions, security)
        _warn_about_open_satellites(config, security)
        self._control = control
        control.attach(context)
        try:
            await backends.start_configured()
        except BaseException:
            await backends.close()
            raise

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        release = asyncio.create_task(
            MemoryReleaser(config.limits.memory_release_s).run(), name="memory release"
        )
        try:
            if isinstance(self._server, AsyncStdioServer):
                _LOGGER.info("Ready: serving Wyoming on stdio://")
                await self._server.run(self._connect)
            else:
                await self._serve_tcp(stop, control, backends)
        finally:
            release.cancel()

    async def _serve_tcp(
        self, stop: asyncio.Event, control: ControlService, backends: Backends
    ) -> None:
        await self._server.start(self._connect)
        watch = asyncio.create_task(LoopWatch().run(), name="loop watch")
        assert self._context is not None
        enrolment = asyncio.create_task(
            EnrolmentWatch(
                self._context.security.satellites, self._context.sessions.unenrolled
            ).run(),
            name="enrolment watch",
        )
        advertiser = self._advertiser(control.identity.server_id)
        if advertiser is not None:
            await advertiser.start()
        _LOGGER.info(
            "Ready: Locara Wyoming serving asr, tts and handle on %s%s",
            self.config.server.uri,
            f" (zeroconf {advertiser.record})" if advertiser else "",
        )
        try:
            await stop.wait()
        finally:
            _LOGGER.info("Shutting down…")
            watch.cancel()
            enrolment.cancel()
            if advertiser is not None:
                await advertiser.stop()
            await self._server.stop()
            await self._wait_for_connections()
            await control.timers.close()
            await control.hub.close()
            await backends.close()
            _LOGGER.info("Stopped")

    def _advertiser(self, server_id: str) -> ZeroconfAdvertiser | None:
        settings = self.config.server
        uri = urlparse(settings.uri)
        if not settings.zeroconf or uri.scheme != "tcp" or uri.port is None:
            return None
        return ZeroconfAdvertiser(
            self.name,
            advertised_address(uri.hostname or ""),
            uri.port,
            settings.zeroconf_interfaces,
            server_id,
        )

    def _closed(self, connection: WyomingConnection) -> None:
        self.connections.discard(connection)
        self._admission.release(connection)
        if not self.connections:
            self._all_closed.set()

    async def _wait_for_connections(self) -> None:
        if not self.connections:
            return
        self._all_closed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), SHUTDOWN_GRACE_S)
