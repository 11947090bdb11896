"""The control channel's requests: subscribe, change settings, announce, enrol
satellites, home answers, timer events (timers/).

Every request comes on a connection that proved it holds the server's token (the
exchange in protocol/auth.py, role `control`); the token itself never crosses the
network. Settings changes, whole
(`locara-settings`) or patches of one satellite or room (`locara-set-muted`,
`locara-set-room`), are applied one at a time under one lock, each to the settings as
the one before left them, so that changes sent at the same moment never undo each
other. They are checked whole, saved atomically and applied to the running server: new
sessions and new `handle` requests use them at once, and live sessions whose backend or
persona changed are moved to the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from wyoming.event import Event

from .. import __version__
from ..audio_format import PcmFormat
from ..backends.base import HomeControl
from ..backends.registry import check_configured_backends, configured_backends
from ..config import ConfigError, LocaraConfig
from ..errors import BadRequest, Busy, NotFound, StorageFailed, TooLarge, Unauthorized
from ..media import decode_media
from ..protocol import WriteEvent
from ..protocol.auth import PairingCode
from ..protocol.control import (
    ANNOUNCE_TYPE,
    ENROL_TYPE,
    HOME_ANSWER_TYPE,
    SET_MUTED_TYPE,
    SET_ROOM_TYPE,
    SETTINGS_TYPE,
    SUBSCRIBE_TYPE,
    TIMER_TYPE,
    UNENROL_TYPE,
    Announce,
    AnnounceDone,
    BackendHealth,
    ChangeSettings,
    ControlEventError,
    ControlState,
    Enrol,
    EnrolDone,
    HomeAnswer,
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
    Unenrol,
    UnenrolDone,
)
from ..security.enrolment import EnrolmentError
from ..security.identity import Identity, load_identity
from ..security.principal import STRANGER, Principal
from ..server_context import ServerContext
from ..sessions.link import Playback, SatelliteGoneError, SessionLink
from ..sessions.registry import SessionChange
from ..sessions.routing import route
from ..stages.tts import VoiceNotFoundError
from ..timers.service import TimerService
from .hub import ControlHub, Subscriber
from .settings import SettingsFile, muted_patch, room_patch, settings_of, with_settings

_LOGGER = logging.getLogger(__name__)

ControlRequest = (
    Subscribe
    | ChangeSettings
    | SetMuted
    | SetRoom
    | Announce
    | Enrol
    | Unenrol
    | HomeAnswer
    | TimerEvent
)
REQUESTS: dict[str, Callable[[Event], ControlRequest]] = {
    SUBSCRIBE_TYPE: Subscribe.from_event,
    SETTINGS_TYPE: ChangeSettings.from_event,
    SET_MUTED_TYPE: SetMuted.from_event,
    SET_ROOM_TYPE: SetRoom.from_event,
    ANNOUNCE_TYPE: Announce.from_event,
    ENROL_TYPE: Enrol.from_event,
    UNENROL_TYPE: Unenrol.from_event,
    HOME_ANSWER_TYPE: HomeAnswer.from_event,
    TIMER_TYPE: TimerEvent.from_event,
}
CONTROL_TYPES = frozenset(REQUESTS)


def waits_on_a_room(event: Event) -> bool:
    """Whether the request's answer waits on a room (an announcement until it has played,
    a question until it is answered): it is served beside the connection's queue, which
    must not wait that long."""
    return event.type == ANNOUNCE_TYPE


HOME_ANSWER = HOME_ANSWER_TYPE
HOME_CONTROL_MODES = ["home_assistant_first", "llm_only"]


SettingsPatch = Callable[[dict[str, Any]], dict[str, Any]]
"""The settings as they are → the settings to replace."""


ANNOUNCE_BLOCK_S = 0.5
"""An announcement's decoded chime or media file goes out in chunks this long."""


@dataclass(frozen=True)
class Sounds:
    """An announcement's decoded chime and media file (PCM), where given."""

    chime: bytes | None
    media: bytes | None


@dataclass
class ControlClient:
    """What the control channel keeps of one connection."""

    peer: str
    write: WriteEvent
    disconnect: Callable[[], None]
    """Closes the connection at once (a subscriber that fell behind)."""
    subscriber: Subscriber | None = None
    principal: Principal = STRANGER
    """Who the connection proved to be (security/handshake.py)."""


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
        self._timers: TimerService | None = None
        self._settings_lock = asyncio.Lock()
        self._asking: set[str] = set()
        """Satellites with a question open: one at a time each."""

    @staticmethod
    def load(data_dir: Path, server_name: str) -> ControlService:
        return ControlService(load_identity(data_dir), SettingsFile(data_dir), server_name)

    def attach(self, context: ServerContext) -> None:
        self._context = context
        context.sessions.add_listener(self.session_changed)
        self._timers = TimerService(context.sessions, lambda: context.config, self.speak)

    @property
    def context(self) -> ServerContext:
        assert self._context is not None, "attach() the server context first"
        return self._context

    @property
    def timers(self) -> TimerService:
        assert self._timers is not None, "attach() the server context first"
        return self._timers

    # -- requests -----------------------------------------------------------------

    async def handle(self, client: ControlClient, event: Event) -> Event | None:
        """The answer to a control request (of CONTROL_TYPES); a LocaraError refuses it."""
        if not client.principal.is_control:
            _LOGGER.warning("A %s request on a connection without the token was refused",
                            event.type)  # fmt: skip
            raise Unauthorized(
                "control requests need a connection that proved it holds the server's "
                "token (locara-tls, then locara-auth as `control`): see docs/protocol.md"
            )
        try:
            request = REQUESTS[event.type](event)
        except ControlEventError as error:
            raise BadRequest(str(error)) from None
        if isinstance(request, HomeAnswer):
            if client.subscriber is None:
                raise Unauthorized("home answers come on a subscribed connection")
            self.hub.home_answer(request)
            return None
        match request:
            case Subscribe():
                if client.subscriber is None:
                    name = f"{request.client or '?'} at {client.peer}"
                    client.subscriber = self.hub.subscribe(name, client.write, client.disconnect)
                    _LOGGER.info("Control connection %s subscribed", name)
                return self.state(request.request_id).event()
            case ChangeSettings():
                settings = await self.change_settings(request.settings)
            case SetMuted():
                settings = await self._change_settings(partial(muted_patch, patch=request))
            case SetRoom():
                settings = await self._change_settings(partial(room_patch, patch=request))
            case Announce():
                return (await self.announce(request)).event()
            case Enrol():
                code = self._enrol(request.name)
                return EnrolDone(
                    request_id=request.request_id, name=code.name, pairing_code=code.encode()
                ).event()
            case Unenrol():
                ended = await self._unenrol(request.name)
                return UnenrolDone(
                    request_id=request.request_id, name=request.name, ended_session=ended
                ).event()
            case TimerEvent():
                delivered = await self.timers.handle(request)
                return TimerDone(request_id=request.request_id, delivered=delivered).event()
        return SettingsDone(request_id=request.request_id, settings=settings).event()

    def state(self, request_id: str | None = None) -> ControlState:
        return ControlState(
            request_id=request_id,
            server=self.server_state(),
            settings=settings_of(self.context.config),
            satellites=list(self.hub.satellites.values()),
            options=self.options(),
        )

    def options(self) -> Options:
        """What the settings may choose from."""
        context = self.context
        return Options(
            backends=context.backends.available(context.config),
            voices=sorted(context.stages.tts.voices),
            personas=[p.name for p in context.config.personas],
            home_control=HOME_CONTROL_MODES,
        )

    def server_state(self) -> ServerStatus:
        context = self.context
        return ServerStatus(
            server_id=self.identity.server_id,
            name=self.server_name,
            version=__version__,
            sessions_active=len(context.sessions),
            last_v2v_ms=self.last_v2v_ms,
            backends={
                model_id: BackendHealth(bool(status["healthy"]), _count(status.get("sessions")))
                for model_id, status in context.backends.status().items()
            },
        )

    # -- settings -----------------------------------------------------------------

    async def change_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the settings `changes` names; all the settings as they now are."""
        if not changes:
            raise BadRequest("settings must name at least one setting to change")
        return await self._change_settings(lambda _: changes)

    async def _change_settings(self, patch: SettingsPatch) -> dict[str, Any]:
        """Apply `patch` to the settings as they are when the lock is ours, or nothing."""
        context = self.context
        async with self._settings_lock:
            changes = patch(settings_of(context.config))
            try:
                changed = with_settings(context.config, changes, "settings")
                check_configured_backends(changed)
            except ConfigError as error:
                raise BadRequest(str(error)) from None
            self._check_voices(changed)
            started = await self._start_new_backends(changed)
            try:
                self.settings_file.save(changed)
            except StorageFailed:
                await self._stop_backends(started)
                raise
            previous, context.config = context.config, changed
            _LOGGER.info("Settings changed: %s", ", ".join(sorted(changes)))
            await context.sessions.apply_settings(previous, changed)
        settings = settings_of(changed)
        self.hub.push(SettingsChanged(settings, self.options()))
        return settings

    def _check_voices(self, config: LocaraConfig) -> None:
        for persona in config.personas:
            try:
                self.context.stages.tts.resolve_voice(persona.voice, persona.language)
            except VoiceNotFoundError as error:
                raise BadRequest(f"persona {persona.name!r}: {error}") from None

    async def _start_new_backends(self, config: LocaraConfig) -> list[str]:
        """Start the backends `config` names that are not loaded; the ids started."""
        backends = self.context.backends
        started: list[str] = []
        for model_id in sorted(set(configured_backends(config).values())):
            if backends.loaded(model_id):
                continue
            _LOGGER.info("Starting %s for the new settings…", model_id)
            try:
                await backends.get(model_id).start()
            except Exception as error:
                await backends.discard(model_id)
                raise BadRequest(f"cannot start {model_id}: {error}") from None
            started.append(model_id)
        return started

    async def _stop_backends(self, model_ids: list[str]) -> None:
        """Stop backends started for a change that was not made: the server as before."""
        for model_id in model_ids:
            await self.context.backends.discard(model_id)
            _LOGGER.info("Stopped %s: the settings that named it were not saved", model_id)

    # -- enrolment ------------------------------------------------------------------

    def _enrol(self, name: str) -> PairingCode:
        try:
            code = self.context.security.enrol(name)
        except EnrolmentError as error:
            raise BadRequest(str(error)) from None
        except OSError as error:
            raise StorageFailed(f"the enrolment could not be saved ({error})") from error
        _LOGGER.info("Satellite %s enrolled from Home Assistant", code.name)
        return code

    async def _unenrol(self, name: str) -> bool:
        """Remove `name`'s enrolment and end its live session; whether it had one."""
        try:
            removed = self.context.security.satellites.remove(name)
        except OSError as error:
            raise StorageFailed(f"the enrolment could not be removed ({error})") from error
        if not removed:
            raise NotFound(f"no satellite named {name!r} is enrolled")
        _LOGGER.info("Satellite %s removed from Home Assistant", name)
        return await self.context.sessions.unenrolled(name.strip())

    # -- announcements --------------------------------------------------------------

    async def announce(self, request: Announce) -> AnnounceDone:
        """Speak (or play) the announcement on its satellites, answered once each has
        reported it played; with `request.answer`, the room's next words."""
        context = self.context
        text, satellite, area = request.text.strip(), request.satellite, request.area
        limit = context.config.limits.max_text_chars
        if len(text) > limit:
            raise TooLarge(f"text of {len(text)} characters is over {limit}")
        links = context.sessions.find(satellite, area)
        if not links:
            where = f"satellite {satellite!r}" if satellite else f"area {area!r}"
            raise NotFound(f"no connected satellite in {where}")
        voices = {link.satellite: self._voice_of(link) for link in links}
        sounds = await self._decode(request, {self._tts_format(v) for v in voices.values()})
        question = self._question(links[0]) if request.answer else None
        if question is not None:
            self._asking.add(links[0].satellite)
        try:
            playbacks = await asyncio.gather(
                *(
                    self._announce_on(link, request, voices[link.satellite], sounds)
                    for link in links
                )
            )
            played = {
                link.satellite: playback
                for link, playback in zip(links, playbacks, strict=True)
                if playback is not None
            }
            if not played:
                names = ", ".join(link.satellite for link in links)
                raise NotFound(f"{names} left before the announcement had played")
            done = AnnounceDone(
                request_id=request.request_id,
                satellites=list(played),
                interrupted=[name for name, p in played.items() if p is Playback.INTERRUPTED],
                unconfirmed=[name for name, p in played.items() if p is Playback.UNCONFIRMED],
            )
            if question is None:
                return done
            answer = await links[0].hear_answer(question, request.answer_timeout_s)
        except SatelliteGoneError as error:
            raise NotFound(f"no answer: {error}") from None
        finally:
            if question is not None:
                self._asking.discard(links[0].satellite)
                if not question.cancel() and not question.cancelled():
                    question.exception()  # taken: a session that closed meanwhile is told above
        return replace(done, answer=answer)

    def _question(self, link: SessionLink) -> asyncio.Future[str]:
        """The room's next words, from now on (words said while the question plays count)."""
        if link.satellite in self._asking:
            raise Busy(f"{link.satellite} is answering another question")
        words = link.session.next_words()
        if words is None:
            raise BadRequest(
                f"{link.satellite}'s backend {link.started.backend} hears no words: "
                "a question needs a voice-pipeline backend"
            )
        return words

    def _voice_of(self, link: SessionLink) -> str:
        persona = route(self.context.config, link.satellite, link.area).persona
        return self.context.stages.tts.resolve_voice(persona.voice, persona.language)

    def _tts_format(self, voice: str) -> PcmFormat:
        return self.context.stages.tts.voices[voice].audio

    @staticmethod
    async def _decode(request: Announce, formats: set[PcmFormat]) -> dict[PcmFormat, Sounds]:
        """The request's chime and media file in each of `formats` (decoded in a thread)."""
        decoded: dict[PcmFormat, Sounds] = {}
        for audio_format in formats:
            chime = await _decoded(request.chime, audio_format)
            decoded[audio_format] = Sounds(chime, await _decoded(request.media, audio_format))
        return decoded

    async def _announce_on(
        self,
        link: SessionLink,
        request: Announce,
        voice: str,
        sounds: dict[PcmFormat, Sounds],
    ) -> Playback | None:
        """How the announcement played (None: the satellite left first); then, when asked,
        the room listens. A room that is to answer the persona keeps the announcement in
        its conversation first; a question's answer goes to whoever asked, so the
        question stays out of it."""
        audio_format = self._tts_format(voice)
        text = request.text.strip()
        audio = self._announcement(sounds[audio_format], text, voice, audio_format)
        try:
            playback = await link.announce(text, audio, audio_format)
            if request.listen and not request.answer:
                interrupted = playback is Playback.INTERRUPTED
                link.session.announced(text, request.extra_system_prompt, interrupted)
            if request.listen or request.answer:
                await link.listen()
        except SatelliteGoneError as error:
            _LOGGER.info("Not announced: %s", error)
            return None
        return playback

    async def _announcement(
        self, sound: Sounds, text: str, voice: str, audio_format: PcmFormat
    ) -> AsyncIterator[bytes]:
        """The chime, then the media file, or else the text in the persona's voice."""
        block = int(ANNOUNCE_BLOCK_S * audio_format.rate) * audio_format.frame_bytes
        for pcm in (sound.chime, sound.media):
            for start in range(0, len(pcm or b""), block):
                yield (pcm or b"")[start : start + block]
        if sound.media is None:
            async for speech in self.context.stages.tts.synthesize(text, voice, None):
                yield speech

    async def speak(self, link: SessionLink, text: str) -> Playback:
        """Say `text` on `link` in its room's persona voice, cutting a reply that plays, once
        it has played. SatelliteGoneError when the satellite leaves meanwhile."""
        voice = self._voice_of(link)
        tts = self.context.stages.tts
        return await link.announce(text, tts.synthesize(text, voice, None), self._tts_format(voice))

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
        self.hub.push(self.server_state())

    async def unsubscribe(self, client: ControlClient) -> None:
        if client.subscriber is not None:
            await self.hub.unsubscribe(client.subscriber)
            client.subscriber = None


async def _decoded(data: bytes, audio_format: PcmFormat) -> bytes | None:
    return await asyncio.to_thread(decode_media, data, audio_format) if data else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None
