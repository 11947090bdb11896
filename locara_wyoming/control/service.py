"""The control channel's requests: subscribe, change settings, announce, home answers.

Every request but a home answer needs the server's token. Settings changes are
checked whole, saved atomically and applied to the running server: new sessions and
new `handle` requests use them at once, and live sessions whose backend or persona
changed are moved to the new one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wyoming.event import Event

from .. import __version__
from ..backends.base import HomeControl
from ..backends.registry import check_configured_backends, configured_backends
from ..config import ConfigError, LocaraConfig
from ..errors import LocaraError
from ..protocol import WriteEvent
from ..server_context import ServerContext
from ..sessions.link import SatelliteGoneError, SessionLink
from ..sessions.registry import SessionChange
from ..sessions.routing import route
from ..stages.tts import VoiceNotFoundError
from .hub import SERVER_PUSH, SETTINGS_PUSH, ControlHub, SatelliteRecord, Subscriber
from .identity import Identity, load_identity
from .settings import SettingsFile, settings_of, with_settings

_LOGGER = logging.getLogger(__name__)

SUBSCRIBE = "locara-control"
SET_SETTINGS = "locara-settings"
ANNOUNCE = "locara-announce"
HOME_ANSWER = "locara-home-answer"
CONTROL_TYPES = {SUBSCRIBE, SET_SETTINGS, ANNOUNCE, HOME_ANSWER}
HOME_CONTROL_MODES = ["home_assistant_first", "llm_only"]


class ControlError(LocaraError):
    """A control request refused; answered with an `error` of `code` repeating its id."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


@dataclass
class ControlClient:
    """What the control channel keeps of one connection."""

    write: WriteEvent
    subscriber: Subscriber | None = None


@dataclass(frozen=True)
class HomeAssistantLink:
    """A session's way to Home Assistant: through whichever integration is subscribed."""

    hub: ControlHub
    session_id: str
    satellite: str
    area: str | None

    @property
    def available(self) -> bool:
        return self.hub.subscribed

    async def ask(self, text: str, language: str) -> str | None:
        return await self.hub.ask_home(text, language, self.satellite, self.area, self.session_id)


class ControlService:
    def __init__(self, identity: Identity, settings_file: SettingsFile, server_name: str) -> None:
        self.identity = identity
        self.settings_file = settings_file
        self.server_name = server_name
        self.hub = ControlHub()
        self.last_v2v_ms: float | None = None
        self._context: ServerContext | None = None
        self._settings_lock = asyncio.Lock()

    @staticmethod
    def load(data_dir: Path, server_name: str) -> ControlService:
        return ControlService(load_identity(data_dir), SettingsFile(data_dir), server_name)

    def attach(self, context: ServerContext) -> None:
        self._context = context
        context.sessions.add_listener(self.session_changed)

    @property
    def context(self) -> ServerContext:
        assert self._context is not None, "attach() the server context first"
        return self._context

    # -- requests -----------------------------------------------------------------

    async def handle(self, client: ControlClient, event: Event) -> Event | None:
        """The answer to a control request; ControlError when it is refused."""
        data = event.data
        if event.type == HOME_ANSWER:
            if client.subscriber is None:
                raise ControlError("unauthorized", "home answers come on a subscribed connection")
            self.hub.home_answer(data.get("id"), data.get("handled"), data.get("speech"))
            return None
        if not self.identity.accepts(data.get("token")):
            _LOGGER.warning("A %s request with a wrong or missing token was refused", event.type)
            raise ControlError("unauthorized", "a wrong or missing token: see <data_dir>/token")
        answer: dict[str, Any]
        if event.type == SUBSCRIBE:
            if client.subscriber is None:
                client.subscriber = self.hub.subscribe(client.write)
                _LOGGER.info("Control connection from %s subscribed", data.get("client", "?"))
            return Event(type="locara-control-state", data={"id": data.get("id"), **self.state()})
        if event.type == SET_SETTINGS:
            answer = {"settings": await self.change_settings(data.get("settings"))}
        else:
            answer = {"satellites": await self.announce(data)}
        return Event(type=f"{event.type}-done", data={"id": data.get("id"), **answer})

    def state(self) -> dict[str, Any]:
        return {
            "server": self.server_state(),
            "settings": settings_of(self.context.config),
            "satellites": self.hub.satellite_records(),
            "options": self.options(),
        }

    def options(self) -> dict[str, list[str]]:
        """What the settings may choose from."""
        context = self.context
        return {
            "backends": context.backends.available(context.config),
            "voices": sorted(context.stages.tts.voices),
            "personas": [p.name for p in context.config.personas],
            "home_control": HOME_CONTROL_MODES,
        }

    def server_state(self) -> dict[str, Any]:
        context = self.context
        return {
            "server_id": self.identity.server_id,
            "name": self.server_name,
            "version": __version__,
            "sessions_active": len(context.sessions),
            "last_v2v_ms": self.last_v2v_ms,
            "backends": {
                model_id: {"healthy": status["healthy"], "sessions": status.get("sessions")}
                for model_id, status in context.backends.status().items()
            },
        }

    # -- settings -----------------------------------------------------------------

    async def change_settings(self, changes: object) -> dict[str, Any]:
        context = self.context
        async with self._settings_lock:
            if not isinstance(changes, dict) or not changes:
                raise ControlError("bad-request", "settings must be an object of changes")
            try:
                changed = with_settings(context.config, changes, "settings")
                check_configured_backends(changed)
            except ConfigError as error:
                raise ControlError("bad-request", str(error)) from None
            self._check_voices(changed)
            await self._start_new_backends(changed)
            self.settings_file.save(changed)
            previous, context.config = context.config, changed
            _LOGGER.info("Settings changed: %s", ", ".join(sorted(changes)))
            await context.sessions.apply_settings(previous, changed)
        settings = settings_of(changed)
        self.hub.push(
            Event(type=SETTINGS_PUSH, data={"settings": settings, "options": self.options()})
        )
        return settings

    def _check_voices(self, config: LocaraConfig) -> None:
        for persona in config.personas:
            try:
                self.context.stages.tts.resolve_voice(persona.voice, persona.language)
            except VoiceNotFoundError as error:
                raise ControlError("bad-request", f"persona {persona.name!r}: {error}") from None

    async def _start_new_backends(self, config: LocaraConfig) -> None:
        backends = self.context.backends
        for model_id in sorted(set(configured_backends(config).values())):
            if backends.loaded(model_id):
                continue
            _LOGGER.info("Starting %s for the new settings…", model_id)
            try:
                await backends.get(model_id).start()
            except Exception as error:
                await backends.discard(model_id)
                raise ControlError("bad-request", f"cannot start {model_id}: {error}") from None

    # -- announcements --------------------------------------------------------------

    async def announce(self, data: dict[str, Any]) -> list[str]:
        context = self.context
        text, satellite, area = data.get("text"), data.get("satellite"), data.get("area")
        if not isinstance(text, str) or not text.strip():
            raise ControlError("bad-request", "an announcement needs a text")
        limit = context.config.limits.max_text_chars
        if len(text) > limit:
            raise ControlError("too-large", f"text of {len(text)} characters is over {limit}")
        if not isinstance(satellite, str) and not isinstance(area, str):
            raise ControlError("bad-request", "an announcement needs a satellite or an area")
        links = context.sessions.find(
            satellite if isinstance(satellite, str) else None,
            area if isinstance(area, str) else None,
        )
        if not links:
            where = f"satellite {satellite!r}" if satellite else f"area {area!r}"
            raise ControlError("not-found", f"no connected satellite in {where}")
        listen = data.get("listen") is True
        said = await asyncio.gather(
            *(self._announce_on(link, text.strip(), listen) for link in links)
        )
        return [link.satellite for link, done in zip(links, said, strict=True) if done]

    async def _announce_on(self, link: SessionLink, text: str, listen: bool) -> bool:
        """Whether the announcement went out (False: the satellite left meanwhile)."""
        persona = route(self.context.config, link.satellite, link.area).persona
        tts = self.context.stages.tts
        voice = tts.resolve_voice(persona.voice, persona.language)
        try:
            await link.announce(text, tts.synthesize(text, voice, None), tts.voices[voice].audio)
            if listen:
                await link.listen()
        except SatelliteGoneError as error:
            _LOGGER.info("Not announced: %s", error)
            return False
        return True

    # -- what sessions tell ---------------------------------------------------------

    def home_control(self, session_id: str, satellite: str, area: str | None) -> HomeControl:
        return HomeAssistantLink(self.hub, session_id, satellite, area)

    def session_changed(self, link: SessionLink, change: SessionChange) -> None:
        """A session opened, changed or closed: its satellite's record, and the server's
        state when the number of sessions or the last reply's latency changed."""
        connected = change is not SessionChange.CLOSED
        latency = link.take_latency()
        if latency is not None:
            self.last_v2v_ms = latency
        self.hub.update_satellite(
            SatelliteRecord(
                name=link.satellite,
                area=link.area,
                connected=connected,
                session_id=link.started.session_id,
                backend=link.started.backend,
                persona=link.started.persona,
                state=link.state if connected else "idle",
                muted=link.muted,
                last_transcript=link.last_transcript,
                last_reply=link.last_reply,
            )
        )
        if latency is not None or change is not SessionChange.CHANGED:
            self.push_server_state()

    def push_server_state(self) -> None:
        self.hub.push(Event(type=SERVER_PUSH, data=self.server_state()))

    async def unsubscribe(self, client: ControlClient) -> None:
        if client.subscriber is not None:
            await self.hub.unsubscribe(client.subscriber)
            client.subscriber = None
