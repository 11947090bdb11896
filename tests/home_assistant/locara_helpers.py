"""Helpers for the Locara integration's tests: a real satellite (enrolled through the
integration, or in open mode not), real speech, the real zeroconf record, and the
integration set up against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

from homeassistant.components.zeroconf.discovery import info_from_service
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.ping import Ping
from wyoming.tts import Synthesize
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from custom_components.locara.auth import (
    ROLE_SATELLITE,
    PairingCode,
    SecureTcpClient,
    certificate_fingerprint,
)
from custom_components.locara.const import DOMAIN

from .conftest import LocaraServer

SERVICE_TYPE = "_wyoming._tcp.local."
RATE, WIDTH, CHANNELS = 16000, 2, 1
CHUNK_MS = 20
CHUNK_BYTES = RATE * WIDTH * CHANNELS * CHUNK_MS // 1000
KEEPALIVE_S = 5.0  # the server closes a session that sends nothing for 30 s
TIMEOUT_S = 60.0


def server_id_of(server: LocaraServer) -> str:
    return (server.data_dir / "server_id").read_text(encoding="utf-8").strip()


def token_of(server: LocaraServer) -> str:
    token = server.token
    assert token, f"the server keeps no token in {server.data_dir}"
    return token


def fingerprint_of(server: LocaraServer) -> str:
    """The SHA-256 fingerprint of the server's own TLS certificate, read from its data
    directory (not from a connection)."""
    pem = (server.data_dir / "tls" / "cert.pem").read_text(encoding="ascii")
    return certificate_fingerprint(ssl.PEM_cert_to_DER_cert(pem))


def pin_of(server: LocaraServer) -> dict[str, str]:
    """What an entry keeps of `server` once it proved itself."""
    return {"server_id": server_id_of(server), "fingerprint": fingerprint_of(server)}


def saved_settings(server: LocaraServer) -> dict[str, Any]:
    """The settings the server wrote to `<data_dir>/settings.json`."""
    path = server.data_dir / "settings.json"
    assert path.exists(), f"the server saved no settings in {path}"
    settings: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return settings


async def wait_until(
    condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S
) -> None:
    """Poll `condition` while Home Assistant's loop runs; fail naming `what` on timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            # Conditions span HA's states and registries: no one event to wait on.
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}") from None


async def discover(server: LocaraServer) -> ZeroconfServiceInfo:
    """The server's real mDNS record, browsed on loopback, as Home Assistant's zeroconf
    component hands it to a config flow."""
    record = f"{server.zeroconf_name}.{SERVICE_TYPE}"
    found: asyncio.Queue[str] = asyncio.Queue()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            found.put_nowait(name)

    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    browser = AsyncServiceBrowser(aiozc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        async with asyncio.timeout(20):
            while await found.get() != record:
                pass
        service = AsyncServiceInfo(SERVICE_TYPE, record)
        assert await service.async_request(aiozc.zeroconf, 5000), f"{record} did not resolve"
    finally:
        await browser.async_cancel()
        await aiozc.async_close()
    info = info_from_service(service)
    assert info is not None, f"Home Assistant cannot use the record {service}"
    return info


async def synthesize(server: LocaraServer, text: str) -> bytes:
    """`text` spoken by the server's own tts program, as 16 kHz 16-bit mono PCM, with
    silence before it (as a satellite sends 300 ms of what came before the speech) and
    after it: longer than the server waits when its end-of-turn model judges the thought
    unfinished (`incomplete_silence_ms`, 1600 ms by default), so that the turn always ends."""
    converter = AudioChunkConverter(rate=RATE, width=WIDTH, channels=CHANNELS)
    pcm = bytearray()
    async with AsyncTcpClient(server.host, server.port) as client, asyncio.timeout(TIMEOUT_S):
        await client.write_event(Synthesize(text=text).event())
        while True:
            event = await client.read_event()
            assert event is not None, f"the server closed the connection during {text!r}"
            if AudioChunk.is_type(event.type):
                pcm += converter.convert(AudioChunk.from_event(event)).audio
            elif AudioStop.is_type(event.type):
                break
    assert len(pcm) > RATE * WIDTH // 2, f"the server's voice gave {len(pcm)} bytes for {text!r}"
    return silence(0.5) + bytes(pcm) + silence(2.5)


def silence(seconds: float) -> bytes:
    return bytes(int(RATE * seconds) * WIDTH * CHANNELS)


def audio_seconds(events: list[Event]) -> float:
    """How long the audio in `events` plays."""
    seconds = 0.0
    for event in events:
        if AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            seconds += len(chunk.audio) / (chunk.rate * chunk.width * chunk.channels)
    return seconds


class SessionRefused(Exception):
    """The server answered the satellite's `run-pipeline` with an `error`."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code


class Satellite:
    """A small real satellite: a voice session over TCP, its microphone streamed in real
    time at 16 kHz, every downlink event kept, and `played` reported after each reply.

    With a pairing code it is an enrolled satellite, as `locara-satellite --pair CODE`
    makes one: TLS, the server proves itself (the pinned certificate and id, and the
    key), then the satellite does, before the session opens. Without one it is an
    unenrolled satellite over plain TCP, which only a server in open mode admits.
    """

    def __init__(
        self,
        server: LocaraServer,
        name: str,
        area: str | None = None,
        pairing_code: str | None = None,
    ) -> None:
        self.name = name
        self.area = area
        self.credential = PairingCode.decode(pairing_code) if pairing_code else None
        assert self.credential is None or self.credential.name == name, self.credential
        self.events: list[Event] = []
        self.session: dict[str, Any] = {}
        self._client = SecureTcpClient(server.host, server.port)
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._audio_started = False
        self._playing: str | None = None  # the reply whose audio is arriving
        self._played_samples = 0
        self.played_delay_s = 0.0
        """How long after a reply's audio has come its `played` report goes (the reply
        plays that long)."""
        self.reported: dict[str, int] = {}
        """Each reply's id → how many downlink events had come when its report went."""
        self._reports: set[asyncio.Task[None]] = set()

    async def start(self) -> dict[str, Any]:
        """Open the session (docs/protocol.md, "Opening"); the `locara-session` data."""
        await self._client.connect()
        if (credential := self.credential) is not None:
            await self._client.authenticate(
                ROLE_SATELLITE, credential.name, credential.key,
                fingerprint=credential.fingerprint, server_id=credential.server_id,
            )  # fmt: skip
        locara: dict[str, Any] = {"protocol": 1, "name": self.name}
        if self.area is not None:
            locara["area"] = self.area
        await self._client.write_event(
            Event(
                "run-pipeline",
                {
                    "start_stage": "asr",
                    "end_stage": "tts",
                    "restart_on_end": True,
                    "locara": locara,
                },
            )
        )
        self._tasks = [
            asyncio.create_task(self._read(), name=f"satellite {self.name} downlink"),
            asyncio.create_task(self._keepalive(), name=f"satellite {self.name} keepalive"),
        ]
        opened = await self.wait_for(frozenset({"locara-session", "error"}))
        if opened.type == "error":
            raise SessionRefused(str(opened.data.get("code")), str(opened.data.get("text")))
        self.session = opened.data
        return self.session

    def mark(self) -> int:
        """A point in the downlink: `wait_for(..., after=mark)` sees only later events."""
        return len(self.events)

    async def wait_for(
        self,
        event_type: str | frozenset[str],
        match: Callable[[dict[str, Any]], bool] = lambda data: True,
        after: int = 0,
        timeout_s: float = TIMEOUT_S,
    ) -> Event:
        """The first event of `event_type` (or of one of them) after `after` that `match`es."""
        types = {event_type} if isinstance(event_type, str) else event_type
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for event in self.events[after:]:
                        if event.type in types and match(event.data):
                            return event
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            seen = [event.type for event in self.events[after:]]
            raise AssertionError(
                f"{self.name}: no {event_type} within {timeout_s:g} s; it got {seen}"
            ) from None

    async def say(self, pcm: bytes) -> None:
        """Stream 16 kHz 16-bit mono `pcm` as a microphone would: in real time."""
        loop = asyncio.get_running_loop()
        if not self._audio_started:
            await self._client.write_event(AudioStart(RATE, WIDTH, CHANNELS).event())
            self._audio_started = True
        due = loop.time()
        for start in range(0, len(pcm), CHUNK_BYTES):
            chunk = AudioChunk(RATE, WIDTH, CHANNELS, pcm[start : start + CHUNK_BYTES])
            await self._client.write_event(chunk.event())
            due += CHUNK_MS / 1000
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _read(self) -> None:
        while (event := await self._client.read_event()) is not None:
            self.events.append(event)
            self._arrived.set()
            await self._report_played(event)

    async def _report_played(self, event: Event) -> None:
        """Play every reply at once, as a speaker with an endless buffer would."""
        if AudioStart.is_type(event.type) and isinstance(event.data.get("reply_id"), str):
            self._playing, self._played_samples = event.data["reply_id"], 0
        elif AudioChunk.is_type(event.type) and self._playing is not None:
            chunk = AudioChunk.from_event(event)
            self._played_samples += len(chunk.audio) // (chunk.width * chunk.channels)
        elif AudioStop.is_type(event.type) and self._playing is not None:
            played = {"reply_id": self._playing, "samples": self._played_samples}
            self._playing = None
            if not self.played_delay_s:
                await self._report(played)
                return
            report = asyncio.create_task(self._report(played, self.played_delay_s))
            self._reports.add(report)
            report.add_done_callback(self._reports.discard)

    async def _report(self, played: dict[str, Any], after_s: float = 0.0) -> None:
        await asyncio.sleep(after_s)
        self.reported[played["reply_id"]] = len(self.events)
        await self._client.write_event(Event("played", played))

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            await self._client.write_event(Ping().event())

    async def ended_by_server(self, timeout_s: float = TIMEOUT_S) -> None:
        """Wait until the server ends the connection."""
        reader = self._tasks[0]
        done, _ = await asyncio.wait({reader}, timeout=timeout_s)
        assert done, f"{self.name}: the server kept the connection for {timeout_s:g} s"

    async def close(self) -> None:
        """End the session as a satellite does (`audio-stop`) and wait for the server to
        close; a satellite without a session just disconnects."""
        if self.session:
            with contextlib.suppress(ConnectionError, OSError):
                await self._client.write_event(AudioStop().event())
            reader, keepalive = self._tasks
            keepalive.cancel()
            with contextlib.suppress(
                TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError
            ):
                async with asyncio.timeout(10):
                    await reader
        for task in [*self._tasks, *self._reports]:
            task.cancel()
            with contextlib.suppress(
                asyncio.CancelledError, ConnectionError, OSError, asyncio.IncompleteReadError
            ):
                await task
        await self._client.disconnect()


@contextlib.asynccontextmanager
async def satellite(
    server: LocaraServer, name: str, area: str | None = None, pairing_code: str | None = None
) -> AsyncIterator[Satellite]:
    room = Satellite(server, name, area, pairing_code)
    try:
        await room.start()
        yield room
    finally:
        await room.close()


async def add_satellite(hass: HomeAssistant, name: str) -> str:
    """Enrol `name` through the integration (`locara.add_satellite`); its pairing code."""
    response = await hass.services.async_call(
        DOMAIN, "add_satellite", {"name": name}, blocking=True, return_response=True
    )
    assert response is not None and response["name"] == name, response
    code = response["pairing_code"]
    assert isinstance(code, str), response
    return code


@contextlib.asynccontextmanager
async def enrolled_satellite(
    hass: HomeAssistant, server: LocaraServer, name: str, area: str | None = None
) -> AsyncIterator[Satellite]:
    """A satellite enrolled through the integration, connected with its pairing code."""
    async with satellite(server, name, area, await add_satellite(hass, name)) as room:
        yield room


async def setup_entry(hass: HomeAssistant, server: LocaraServer) -> MockConfigEntry:
    """The integration set up against `server` as a flow would have added it."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=server.zeroconf_name,
        unique_id=server_id_of(server),
        data={"host": server.host, "port": server.port, "token": token_of(server)},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"
    return entry


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """The entity id the integration's entity with `unique_id` got."""
    registry = er.async_get(hass)
    found = registry.async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, (
        f"no {platform} entity {unique_id!r}; the integration has "
        f"{sorted(e.unique_id for e in registry.entities.values() if e.platform == DOMAIN)}"
    )
    return found


def enable_before_added(
    hass: HomeAssistant, entry: ConfigEntry, platform: str, unique_id: str
) -> None:
    """Register the integration's entity `unique_id` enabled before the integration adds
    it, as a user who turned it on earlier would have: for an entity disabled by default
    (a later change of the registry would reload the entry 30 s on)."""
    er.async_get(hass).async_get_or_create(platform, DOMAIN, unique_id, config_entry=entry)


def state_of(hass: HomeAssistant, entity: str) -> str | None:
    state = hass.states.get(entity)
    return state.state if state is not None else None


def words(text: str | None) -> set[str]:
    return set(re.findall(r"[a-z']+", (text or "").lower()))


async def add_kitchen_light(hass: HomeAssistant) -> str:
    """A light Home Assistant can switch, exposed to Assist as every new light is, off;
    its entity id."""
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"kitchen_power": {"name": "Kitchen power"}}}
    )
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "light": [
                        {
                            "name": "Kitchen Lights",
                            "state": "{{ is_state('input_boolean.kitchen_power', 'on') }}",
                            "turn_on": {
                                "action": "input_boolean.turn_on",
                                "target": {"entity_id": "input_boolean.kitchen_power"},
                            },
                            "turn_off": {
                                "action": "input_boolean.turn_off",
                                "target": {"entity_id": "input_boolean.kitchen_power"},
                            },
                        }
                    ]
                }
            ]
        },
    )
    await hass.async_block_till_done()
    assert state_of(hass, "light.kitchen_lights") == "off"
    return "light.kitchen_lights"


async def say_until_heard(room: Satellite, speech: bytes, expected: set[str]) -> int:
    """Say `speech` until the server's transcript has the `expected` words; the mark
    before the last time. Piper speaks a little differently each time and Whisper tiny
    may mishear it: it is said again, at most twice more."""
    heard = ""
    for _ in range(3):
        mark = room.mark()
        await room.say(speech)
        heard = (await room.wait_for("transcript", after=mark)).data["text"]
        if words(heard) >= expected:
            return mark
    raise AssertionError(f"the server's speech-to-text heard {heard!r}")
