"""The control channel's events, between a Locara server and Home Assistant's integration.

Each event is a dataclass with `is_type` / `event()` / `from_event()`, the `wyoming`
package's pattern; docs/protocol.md, "The control channel", says what each means.
`from_event` checks every field it reads and raises `ControlEventError` (a
`ValueError`) naming the event and the field. Fields it does not know are ignored, so
that either end may be the newer one, except in the two patch requests
(`SetMuted`, `SetRoom`): a change this end cannot make must not be dropped unseen.

One definition, two copies. This file is `locara_wyoming/protocol/control.py`, the
source, and also `custom_components/locara/protocol.py`, a byte-identical copy for the
integration (a custom integration cannot import the server's package). Edit the
source, then copy it over:

    cp locara_wyoming/protocol/control.py custom_components/locara/protocol.py

tests/test_control_protocol.py fails while the two differ. So that the copy works where
it lies, this module imports only the standard library and `wyoming` (nothing newer
than the version the integration's manifest pins), and passes the server's mypy and
the integration's (strict, Python 3.13).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from wyoming.event import Event, Eventable

SUBSCRIBE_TYPE = "locara-control"
STATE_TYPE = "locara-control-state"
SETTINGS_TYPE = "locara-settings"
SET_MUTED_TYPE = "locara-set-muted"
SET_ROOM_TYPE = "locara-set-room"
SETTINGS_DONE_TYPE = "locara-settings-done"
ANNOUNCE_TYPE = "locara-announce"
ANNOUNCE_DONE_TYPE = "locara-announce-done"
HOME_REQUEST_TYPE = "locara-home-request"
HOME_ANSWER_TYPE = "locara-home-answer"
SATELLITE_TYPE = "locara-satellite"
SERVER_TYPE = "locara-server"
SETTINGS_CHANGED_TYPE = "locara-settings-changed"
ENROL_TYPE = "locara-enrol"
ENROL_DONE_TYPE = "locara-enrol-done"
UNENROL_TYPE = "locara-unenrol"
UNENROL_DONE_TYPE = "locara-unenrol-done"
TIMER_TYPE = "locara-timer"
TIMER_DONE_TYPE = "locara-timer-done"
TIMER_CHANGES = ("started", "updated", "cancelled", "finished")
"""What a `locara-timer` says happened: Home Assistant's four timer events."""

ROOM_SETTINGS = ("backend", "persona")
"""What a `locara-set-room` may change in a room entry."""
_REQUEST_KEYS = ("id",)
ANSWER_TIMEOUT_S = 15.0
"""How long a room has to answer a question (`Announce.answer`) by default..."""
MAX_ANSWER_TIMEOUT_S = 120.0
"""...and at most."""
MAX_EXTRA_PROMPT_CHARS = 4000
"""The longest `Announce.extra_system_prompt`."""


class ControlEventError(ValueError):
    """A control event with a missing or mistyped field; the text names both."""


def _shown(value: object) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 40 else text[:37] + "..."


class _Fields:
    """An event's data, or an object inside it, read with every field checked."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ControlEventError(f"{where} must be an object, not {_shown(data)}")
        self.data: dict[str, Any] = data
        self.where = where

    def _refused(self, key: str, expected: str) -> ControlEventError:
        if key not in self.data:
            return ControlEventError(f"{self.where}: {key!r} is missing")
        value = _shown(self.data[key])
        return ControlEventError(f"{self.where}: {key!r} must be {expected}, not {value}")

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._refused(key, "a string")
        return value

    def filled(self, key: str) -> str:
        """A string with more than blanks in it (a name, an announcement's text)."""
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self._refused(key, "a non-blank string")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self._refused(key, "a string or null")
        return value

    def optional_filled(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.filled(key)

    def flag(self, key: str, default: bool | None = None) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._refused(key, "true or false")
        return value

    def count(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._refused(key, "a whole number of 0 or more")
        return value

    def optional_count(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.count(key)

    def optional_number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._refused(key, "a number or null")
        return float(value)

    def mapping(self, key: str) -> dict[str, Any]:
        return self.fields(key).data

    def fields(self, key: str) -> _Fields:
        if not isinstance(self.data.get(key), dict):
            raise self._refused(key, "an object")
        return _Fields(self.data[key], f"{self.where}: {key}")

    def texts(self, key: str) -> list[str]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._refused(key, "a list of strings")
        return value

    def optional_texts(self, key: str) -> list[str]:
        """A list of strings; empty when left out."""
        return [] if self.data.get(key) is None else self.texts(key)

    def objects(self, key: str) -> list[_Fields]:
        value = self.data.get(key)
        if not isinstance(value, list):
            raise self._refused(key, "a list of objects")
        return [_Fields(item, f"{self.where}: {key}[{i}]") for i, item in enumerate(value)]

    def request_id(self) -> str | None:
        return self.optional_text("id")

    def only(self, *keys: str) -> None:
        """Refuse keys other than `keys`."""
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            raise ControlEventError(
                f"{self.where}: {unknown[0]!r} is not one of its fields ({', '.join(keys)})"
            )


def _with_id(request_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return data if request_id is None else {"id": request_id, **data}


# -- requests (client → server) --------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Request:
    """What every request carries: an id that its answer repeats (an `error` answer
    repeats it as `request_id`). Requests come only on a connection that proved it holds
    the server's token (auth.py, role `control`); the token itself is never sent."""

    request_id: str | None = None

    def _data(self, **data: Any) -> dict[str, Any]:
        return _with_id(self.request_id, data)


@dataclass(frozen=True, kw_only=True)
class Subscribe(_Request, Eventable):
    """Send this connection the pushes from now on; answered by `ControlState`."""

    client: str | None = None
    """Who subscribes, for the server's log."""

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SUBSCRIBE_TYPE

    def event(self) -> Event:
        return Event(SUBSCRIBE_TYPE, self._data(client=self.client))

    @staticmethod
    def from_event(event: Event) -> Subscribe:
        fields = _Fields(event.data, event.type)
        return Subscribe(
            request_id=fields.request_id(),
            client=fields.optional_text("client"),
        )


@dataclass(frozen=True, kw_only=True)
class ChangeSettings(_Request, Eventable):
    """Replace the named settings whole; answered by `SettingsDone`."""

    settings: dict[str, Any]

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SETTINGS_TYPE

    def event(self) -> Event:
        return Event(SETTINGS_TYPE, self._data(settings=self.settings))

    @staticmethod
    def from_event(event: Event) -> ChangeSettings:
        fields = _Fields(event.data, event.type)
        return ChangeSettings(
            request_id=fields.request_id(),
            settings=fields.mapping("settings"),
        )


@dataclass(frozen=True, kw_only=True)
class SetMuted(_Request, Eventable):
    """Patch: mute one satellite or unmute it, leaving the others as they are."""

    satellite: str
    muted: bool

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SET_MUTED_TYPE

    def event(self) -> Event:
        return Event(SET_MUTED_TYPE, self._data(satellite=self.satellite, muted=self.muted))

    @staticmethod
    def from_event(event: Event) -> SetMuted:
        fields = _Fields(event.data, event.type)
        fields.only(*_REQUEST_KEYS, "satellite", "muted")
        return SetMuted(
            request_id=fields.request_id(),
            satellite=fields.filled("satellite"),
            muted=fields.flag("muted"),
        )


@dataclass(frozen=True, kw_only=True)
class SetRoom(_Request, Eventable):
    """Patch: change one room entry, the satellite's or the area's, leaving the others.

    `changes` holds some of ROOM_SETTINGS: a value sets that key, None removes it (the
    room then has what its area or the defaults give). Keys left out stay as they are.
    """

    satellite: str | None = None
    area: str | None = None
    changes: dict[str, str | None]

    def __post_init__(self) -> None:
        if (self.satellite is None) == (self.area is None):
            raise ControlEventError(f"{SET_ROOM_TYPE}: give either a satellite or an area")
        if not self.changes:
            raise ControlEventError(
                f"{SET_ROOM_TYPE}: nothing to change (give {' or '.join(ROOM_SETTINGS)})"
            )
        unknown = sorted(set(self.changes) - set(ROOM_SETTINGS))
        if unknown:
            raise ControlEventError(
                f"{SET_ROOM_TYPE}: {unknown[0]!r} is not a room setting "
                f"({', '.join(ROOM_SETTINGS)})"
            )

    @property
    def key(self) -> str:
        """What the room entry is matched by: `satellite` or `area`."""
        return "satellite" if self.satellite is not None else "area"

    @property
    def name(self) -> str:
        """The satellite's or the area's name."""
        name = self.satellite if self.satellite is not None else self.area
        assert name is not None  # __post_init__
        return name

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SET_ROOM_TYPE

    def event(self) -> Event:
        return Event(SET_ROOM_TYPE, self._data(**{self.key: self.name}, **self.changes))

    @staticmethod
    def from_event(event: Event) -> SetRoom:
        fields = _Fields(event.data, event.type)
        fields.only(*_REQUEST_KEYS, "satellite", "area", *ROOM_SETTINGS)
        return SetRoom(
            request_id=fields.request_id(),
            satellite=fields.optional_filled("satellite"),
            area=fields.optional_filled("area"),
            changes={key: fields.optional_text(key) for key in ROOM_SETTINGS if key in fields.data},
        )


@dataclass(frozen=True, kw_only=True)
class Announce(_Request, Eventable):
    """Speak `text` on a satellite, or on every satellite of an area; answered by
    `AnnounceDone`.

    `chime` (played first) and `media` (played instead of speaking `text`) are audio
    files (WAV, MP3, FLAC or Ogg), carried one after the other in the event's payload;
    `chime_bytes` and `media_bytes` in its data say where each ends."""

    text: str = ""
    """Blank only when `media` is given (then it is the announcement's text, not spoken)."""
    satellite: str | None = None
    area: str | None = None
    listen: bool = False
    """Then open the satellite's conversation, as its wake word would."""
    chime: bytes = field(default=b"", repr=False)
    media: bytes = field(default=b"", repr=False)
    answer: bool = False
    """Then listen, and answer with the room's next words (`AnnounceDone.answer`) instead
    of handing them to the room's conversation; one satellite only."""
    answer_timeout_s: float = ANSWER_TIMEOUT_S
    """How long the room has to answer once it listens."""
    extra_system_prompt: str | None = None
    """With `listen`: added to the persona's system prompt while the announcement is in
    the room's conversation (Home Assistant's `start_conversation` passes it)."""

    def __post_init__(self) -> None:
        if self.satellite is None and self.area is None:
            raise ControlEventError(f"{ANNOUNCE_TYPE}: give a satellite or an area")
        if not self.text.strip() and not self.media:
            raise ControlEventError(f"{ANNOUNCE_TYPE}: give a text or a media file")
        if self.answer and self.satellite is None:
            raise ControlEventError(f"{ANNOUNCE_TYPE}: an answer comes from one satellite")
        if not 0 < self.answer_timeout_s <= MAX_ANSWER_TIMEOUT_S:
            raise ControlEventError(
                f"{ANNOUNCE_TYPE}: 'answer_timeout_s' must be over 0 and at most "
                f"{MAX_ANSWER_TIMEOUT_S:g}"
            )
        if self.extra_system_prompt is not None:
            if not self.listen or self.answer:
                raise ControlEventError(
                    f"{ANNOUNCE_TYPE}: 'extra_system_prompt' goes with 'listen' (not 'answer')"
                )
            if len(self.extra_system_prompt) > MAX_EXTRA_PROMPT_CHARS:
                raise ControlEventError(
                    f"{ANNOUNCE_TYPE}: 'extra_system_prompt' is over "
                    f"{MAX_EXTRA_PROMPT_CHARS} characters"
                )

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == ANNOUNCE_TYPE

    def event(self) -> Event:
        data = self._data(
            text=self.text, satellite=self.satellite, area=self.area, listen=self.listen
        )
        if self.chime or self.media:
            data.update(chime_bytes=len(self.chime), media_bytes=len(self.media))
        if self.answer:
            data.update(answer=True, answer_timeout_s=self.answer_timeout_s)
        if self.extra_system_prompt is not None:
            data.update(extra_system_prompt=self.extra_system_prompt)
        return Event(ANNOUNCE_TYPE, data, payload=(self.chime + self.media) or None)

    @staticmethod
    def from_event(event: Event) -> Announce:
        fields = _Fields(event.data, event.type)
        chime_bytes = fields.optional_count("chime_bytes") or 0
        media_bytes = fields.optional_count("media_bytes") or 0
        payload = event.payload or b""
        if chime_bytes + media_bytes != len(payload):
            raise ControlEventError(
                f"{event.type}: 'chime_bytes' and 'media_bytes' ({chime_bytes} + "
                f"{media_bytes}) must add up to the payload's {len(payload)} bytes"
            )
        timeout_s = fields.optional_number("answer_timeout_s")
        return Announce(
            request_id=fields.request_id(),
            text=fields.text("text") if media_bytes else fields.filled("text"),
            satellite=fields.optional_filled("satellite"),
            area=fields.optional_filled("area"),
            listen=fields.flag("listen", default=False),
            chime=payload[:chime_bytes],
            media=payload[chime_bytes:],
            answer=fields.flag("answer", default=False),
            answer_timeout_s=ANSWER_TIMEOUT_S if timeout_s is None else timeout_s,
            extra_system_prompt=fields.optional_text("extra_system_prompt"),
        )


@dataclass(frozen=True, kw_only=True)
class Enrol(_Request, Eventable):
    """Enrol a satellite under `name`, or make it a new key (the old one stops working);
    answered by `EnrolDone` with its pairing code."""

    name: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == ENROL_TYPE

    def event(self) -> Event:
        return Event(ENROL_TYPE, self._data(name=self.name))

    @staticmethod
    def from_event(event: Event) -> Enrol:
        fields = _Fields(event.data, event.type)
        fields.only(*_REQUEST_KEYS, "name")
        return Enrol(request_id=fields.request_id(), name=fields.filled("name"))


@dataclass(frozen=True, kw_only=True)
class Unenrol(_Request, Eventable):
    """Remove a satellite's enrolment; its live session ends at once. Answered by
    `UnenrolDone`."""

    name: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == UNENROL_TYPE

    def event(self) -> Event:
        return Event(UNENROL_TYPE, self._data(name=self.name))

    @staticmethod
    def from_event(event: Event) -> Unenrol:
        fields = _Fields(event.data, event.type)
        fields.only(*_REQUEST_KEYS, "name")
        return Unenrol(request_id=fields.request_id(), name=fields.filled("name"))


@dataclass(frozen=True)
class HomeAnswer(Eventable):
    """Home Assistant's answer to a `HomeRequest`, on its subscribed connection."""

    request_id: str
    handled: bool
    speech: str | None = None
    """What to say when `handled`."""

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == HOME_ANSWER_TYPE

    def event(self) -> Event:
        return Event(
            HOME_ANSWER_TYPE,
            {"id": self.request_id, "handled": self.handled, "speech": self.speech},
        )

    @staticmethod
    def from_event(event: Event) -> HomeAnswer:
        fields = _Fields(event.data, event.type)
        return HomeAnswer(
            request_id=fields.text("id"),
            handled=fields.flag("handled"),
            speech=fields.optional_text("speech"),
        )


# -- what the server tells ---------------------------------------------------------------


@dataclass(frozen=True)
class SatelliteRecord(Eventable):
    """A satellite as the control channel shows it, pushed whenever it changes; the
    server keeps it after the satellite leaves."""

    name: str
    area: str | None = None
    connected: bool = False
    session_id: str | None = None
    backend: str | None = None
    persona: str | None = None
    state: str = "idle"
    muted: bool = False
    last_transcript: str | None = None
    last_reply: str | None = None

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SATELLITE_TYPE

    def event(self) -> Event:
        return Event(SATELLITE_TYPE, asdict(self))

    @staticmethod
    def from_event(event: Event) -> SatelliteRecord:
        return SatelliteRecord._read(_Fields(event.data, event.type))

    @staticmethod
    def _read(fields: _Fields) -> SatelliteRecord:
        return SatelliteRecord(
            name=fields.filled("name"),
            area=fields.optional_text("area"),
            connected=fields.flag("connected"),
            session_id=fields.optional_text("session_id"),
            backend=fields.optional_text("backend"),
            persona=fields.optional_text("persona"),
            state=fields.text("state"),
            muted=fields.flag("muted"),
            last_transcript=fields.optional_text("last_transcript"),
            last_reply=fields.optional_text("last_reply"),
        )


@dataclass(frozen=True)
class BackendHealth:
    healthy: bool
    sessions: int | None = None
    """Conversations it serves now, for backends that count them (end-to-end ones)."""

    @staticmethod
    def _read(fields: _Fields) -> BackendHealth:
        return BackendHealth(
            healthy=fields.flag("healthy"), sessions=fields.optional_count("sessions")
        )


@dataclass(frozen=True)
class ServerStatus(Eventable):
    """The server as the control channel shows it, pushed whenever it changes."""

    server_id: str
    name: str
    version: str
    sessions_active: int
    last_v2v_ms: float | None = None
    """The last reply's voice-to-voice latency."""
    backends: dict[str, BackendHealth] = field(default_factory=dict)
    """The backends loaded, by model id."""

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SERVER_TYPE

    def event(self) -> Event:
        return Event(SERVER_TYPE, asdict(self))

    @staticmethod
    def from_event(event: Event) -> ServerStatus:
        return ServerStatus._read(_Fields(event.data, event.type))

    @staticmethod
    def _read(fields: _Fields) -> ServerStatus:
        backends = fields.fields("backends")
        return ServerStatus(
            server_id=fields.filled("server_id"),
            name=fields.text("name"),
            version=fields.text("version"),
            sessions_active=fields.count("sessions_active"),
            last_v2v_ms=fields.optional_number("last_v2v_ms"),
            backends={key: BackendHealth._read(backends.fields(key)) for key in backends.data},
        )


@dataclass(frozen=True)
class Options:
    """What the settings may choose from."""

    backends: list[str]
    voices: list[str]
    personas: list[str]
    home_control: list[str]

    @staticmethod
    def _read(fields: _Fields) -> Options:
        return Options(
            backends=fields.texts("backends"),
            voices=fields.texts("voices"),
            personas=fields.texts("personas"),
            home_control=fields.texts("home_control"),
        )


@dataclass(frozen=True, kw_only=True)
class ControlState(Eventable):
    """The answer to `Subscribe`: everything the pushes will keep current."""

    request_id: str | None = None
    server: ServerStatus
    settings: dict[str, Any]
    """As docs/protocol.md shows them; the server checks them as its configuration."""
    satellites: list[SatelliteRecord]
    options: Options

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == STATE_TYPE

    def event(self) -> Event:
        data = {
            "server": asdict(self.server),
            "settings": self.settings,
            "satellites": [asdict(satellite) for satellite in self.satellites],
            "options": asdict(self.options),
        }
        return Event(STATE_TYPE, _with_id(self.request_id, data))

    @staticmethod
    def from_event(event: Event) -> ControlState:
        fields = _Fields(event.data, event.type)
        return ControlState(
            request_id=fields.request_id(),
            server=ServerStatus._read(fields.fields("server")),
            settings=fields.mapping("settings"),
            satellites=[SatelliteRecord._read(item) for item in fields.objects("satellites")],
            options=Options._read(fields.fields("options")),
        )


@dataclass(frozen=True, kw_only=True)
class SettingsDone(Eventable):
    """The answer to `ChangeSettings`, `SetMuted` and `SetRoom`: all the settings now."""

    request_id: str | None = None
    settings: dict[str, Any]

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SETTINGS_DONE_TYPE

    def event(self) -> Event:
        return Event(SETTINGS_DONE_TYPE, _with_id(self.request_id, {"settings": self.settings}))

    @staticmethod
    def from_event(event: Event) -> SettingsDone:
        fields = _Fields(event.data, event.type)
        return SettingsDone(request_id=fields.request_id(), settings=fields.mapping("settings"))


@dataclass(frozen=True, kw_only=True)
class AnnounceDone(Eventable):
    """The answer to `Announce`, once the announcement has played: the satellites it was
    played on, and the room's answer when one was asked for (`Announce.answer`)."""

    request_id: str | None = None
    satellites: list[str]
    answer: str | None = None
    interrupted: list[str] = field(default_factory=list)
    """Those of `satellites` that cut it short (a flush: barge-in, a stop)."""
    unconfirmed: list[str] = field(default_factory=list)
    """Those of `satellites` that sent no `played` report in time: it was sent, and
    should have played by now."""

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == ANNOUNCE_DONE_TYPE

    def event(self) -> Event:
        data: dict[str, Any] = {"satellites": self.satellites}
        if self.answer is not None:
            data["answer"] = self.answer
        if self.interrupted:
            data["interrupted"] = self.interrupted
        if self.unconfirmed:
            data["unconfirmed"] = self.unconfirmed
        return Event(ANNOUNCE_DONE_TYPE, _with_id(self.request_id, data))

    @staticmethod
    def from_event(event: Event) -> AnnounceDone:
        fields = _Fields(event.data, event.type)
        return AnnounceDone(
            request_id=fields.request_id(),
            satellites=fields.texts("satellites"),
            answer=fields.optional_text("answer"),
            interrupted=fields.optional_texts("interrupted"),
            unconfirmed=fields.optional_texts("unconfirmed"),
        )


@dataclass(frozen=True, kw_only=True)
class EnrolDone(Eventable):
    """The answer to `Enrol`: the pairing code to give the satellite (`locara-satellite
    --pair CODE`). It holds the satellite's key: show it once, keep it nowhere."""

    request_id: str | None = None
    name: str
    pairing_code: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == ENROL_DONE_TYPE

    def event(self) -> Event:
        data = {"name": self.name, "pairing_code": self.pairing_code}
        return Event(ENROL_DONE_TYPE, _with_id(self.request_id, data))

    @staticmethod
    def from_event(event: Event) -> EnrolDone:
        fields = _Fields(event.data, event.type)
        return EnrolDone(
            request_id=fields.request_id(),
            name=fields.filled("name"),
            pairing_code=fields.filled("pairing_code"),
        )


@dataclass(frozen=True, kw_only=True)
class UnenrolDone(Eventable):
    """The answer to `Unenrol`: whether a live session of the satellite was ended."""

    request_id: str | None = None
    name: str
    ended_session: bool

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == UNENROL_DONE_TYPE

    def event(self) -> Event:
        data = {"name": self.name, "ended_session": self.ended_session}
        return Event(UNENROL_DONE_TYPE, _with_id(self.request_id, data))

    @staticmethod
    def from_event(event: Event) -> UnenrolDone:
        fields = _Fields(event.data, event.type)
        return UnenrolDone(
            request_id=fields.request_id(),
            name=fields.filled("name"),
            ended_session=fields.flag("ended_session"),
        )


@dataclass(frozen=True)
class SettingsChanged(Eventable):
    """Pushed when the settings changed, by any client."""

    settings: dict[str, Any]
    options: Options

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == SETTINGS_CHANGED_TYPE

    def event(self) -> Event:
        return Event(
            SETTINGS_CHANGED_TYPE, {"settings": self.settings, "options": asdict(self.options)}
        )

    @staticmethod
    def from_event(event: Event) -> SettingsChanged:
        fields = _Fields(event.data, event.type)
        return SettingsChanged(
            settings=fields.mapping("settings"), options=Options._read(fields.fields("options"))
        )


@dataclass(frozen=True)
class HomeRequest(Eventable):
    """The server asks Home Assistant to act on a user's words; answered by `HomeAnswer`
    (or not: the server's LLM answers after a few seconds)."""

    request_id: str
    text: str
    language: str
    satellite: str
    area: str | None
    conversation_id: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == HOME_REQUEST_TYPE

    def event(self) -> Event:
        data = asdict(self)
        return Event(HOME_REQUEST_TYPE, {"id": data.pop("request_id"), **data})

    @staticmethod
    def from_event(event: Event) -> HomeRequest:
        fields = _Fields(event.data, event.type)
        return HomeRequest(
            request_id=fields.text("id"),
            text=fields.text("text"),
            language=fields.text("language"),
            satellite=fields.text("satellite"),
            area=fields.optional_text("area"),
            conversation_id=fields.text("conversation_id"),
        )


# -- timers (Home Assistant's timer events for a satellite) ------------------------------


@dataclass(frozen=True)
class TimerInfo:
    """One of Home Assistant's timers, as it stands when the event is sent."""

    id: str
    seconds_left: int
    """Left to run from now (paused: left when it was paused; finished: 0)."""
    active: bool = True
    """False while paused."""
    name: str | None = None
    start_hours: int | None = None
    start_minutes: int | None = None
    start_seconds: int | None = None
    """The duration as the user said it ("5 minutes"), to say which timer finished."""
    language: str = "en"

    @staticmethod
    def _read(fields: _Fields) -> TimerInfo:
        return TimerInfo(
            id=fields.filled("id"),
            seconds_left=fields.count("seconds_left"),
            active=fields.flag("active", default=True),
            name=fields.optional_text("name"),
            start_hours=fields.optional_count("start_hours"),
            start_minutes=fields.optional_count("start_minutes"),
            start_seconds=fields.optional_count("start_seconds"),
            language=fields.text("language") if "language" in fields.data else "en",
        )


@dataclass(frozen=True, kw_only=True)
class TimerEvent(_Request, Eventable):
    """A timer of a satellite's device started, changed, was cancelled or finished in
    Home Assistant; answered by `TimerDone`."""

    satellite: str
    change: str
    """One of TIMER_CHANGES."""
    timer: TimerInfo

    def __post_init__(self) -> None:
        if self.change not in TIMER_CHANGES:
            raise ControlEventError(
                f"{TIMER_TYPE}: 'change' must be one of {', '.join(TIMER_CHANGES)}, "
                f"not {_shown(self.change)}"
            )

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == TIMER_TYPE

    def event(self) -> Event:
        return Event(
            TIMER_TYPE,
            self._data(satellite=self.satellite, change=self.change, timer=asdict(self.timer)),
        )

    @staticmethod
    def from_event(event: Event) -> TimerEvent:
        fields = _Fields(event.data, event.type)
        return TimerEvent(
            request_id=fields.request_id(),
            satellite=fields.filled("satellite"),
            change=fields.text("change"),
            timer=TimerInfo._read(fields.fields("timer")),
        )


@dataclass(frozen=True, kw_only=True)
class TimerDone(Eventable):
    """The answer to `TimerEvent`: whether the satellite has it now (it is connected).
    A `finished` timer not delivered rings when the satellite comes back, if soon enough
    (`timers.missed_ring_s`); Home Assistant says so where people see it."""

    request_id: str | None = None
    delivered: bool

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == TIMER_DONE_TYPE

    def event(self) -> Event:
        return Event(TIMER_DONE_TYPE, _with_id(self.request_id, {"delivered": self.delivered}))

    @staticmethod
    def from_event(event: Event) -> TimerDone:
        fields = _Fields(event.data, event.type)
        return TimerDone(request_id=fields.request_id(), delivered=fields.flag("delivered"))
