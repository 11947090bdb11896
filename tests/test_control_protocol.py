"""The control channel's events, without a server: one definition in two byte-identical
copies (and so is the proving exchange, `auth.py`), every event through `event()` and
`from_event()` and back, and bad fields refused with a text that names them."""

from __future__ import annotations

import ast
import io
import sys
from pathlib import Path
from typing import Any

import pytest
from wyoming.event import Event, Eventable, read_event, write_event

from locara_wyoming.protocol import control
from locara_wyoming.protocol.control import (
    Announce,
    AnnounceDone,
    BackendHealth,
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

ROOT = Path(__file__).parent.parent
SERVER_PROTOCOL = ROOT / "locara_wyoming" / "protocol"
INTEGRATION = ROOT / "custom_components" / "locara"
# Each server module the integration keeps a copy of, and its copy.
COPIES = [
    (SERVER_PROTOCOL / "control.py", INTEGRATION / "protocol.py"),
    (SERVER_PROTOCOL / "auth.py", INTEGRATION / "auth.py"),
]

SETTINGS: dict[str, Any] = {
    "default_backend": "voice-pipeline-default",
    "default_persona": "locara",
    "personas": [{"name": "locara", "voice": None}],
    "rooms": [{"area": "Kitchen", "persona": "locara"}],
    "muted": ["attic"],
}
OPTIONS = Options(
    backends=["voice-pipeline-default"],
    voices=["joe"],
    personas=["locara"],
    home_control=["home_assistant_first", "llm_only"],
)
SERVER = ServerStatus(
    server_id="0123abcd",
    name="locara-den",
    version="0.1.0",
    sessions_active=1,
    last_v2v_ms=812.5,
    backends={
        "voice-pipeline-default": BackendHealth(healthy=True),
        "moshi-x": BackendHealth(False, 2),
    },
)
SATELLITE = SatelliteRecord(
    name="den", area="Den", connected=True, session_id="s1", backend="voice-pipeline-default",
    persona="locara", state="speaking", last_transcript="hello", last_reply="Hi.",
)  # fmt: skip

STATE = ControlState(server=SERVER, settings={}, satellites=[], options=OPTIONS)

EVENTS: list[Eventable] = [
    Subscribe(request_id="1", client="Home Assistant"),
    Subscribe(),
    ChangeSettings(request_id="2", settings={"muted": []}),
    SetMuted(request_id="3", satellite="den", muted=True),
    SetRoom(request_id="4", satellite="den", changes={"persona": "pirate"}),
    SetRoom(area="Kitchen", changes={"backend": None, "persona": "locara"}),
    Announce(request_id="5", text="Dinner is ready.", area="Den", listen=True),
    Announce(text="Hello", satellite="den"),
    Announce(text="", satellite="den", chime=b"RIFF", media=b"fLaC", answer=True),
    Announce(text="Shall I?", satellite="den", chime=b"OggS", answer=True, answer_timeout_s=30.0),
    Announce(text="Heat?", satellite="den", listen=True, extra_system_prompt="It is 15 degrees."),
    HomeAnswer("h1", True, "The light is on."),
    HomeAnswer("h2", False),
    HomeRequest("h1", "turn on the light", "en", "den", None, "c1"),
    ControlState(
        request_id="1", server=SERVER, settings=SETTINGS, satellites=[SATELLITE], options=OPTIONS
    ),
    SettingsDone(request_id="2", settings=SETTINGS),
    AnnounceDone(request_id="5", satellites=["den"]),
    AnnounceDone(request_id="9", satellites=["den"], answer="make them blue"),
    AnnounceDone(satellites=["den", "hall", "loft"], interrupted=["hall"], unconfirmed=["loft"]),
    Enrol(request_id="6", name="den"),
    EnrolDone(request_id="6", name="den", pairing_code="locara1-abc"),
    Unenrol(name="den"),
    UnenrolDone(request_id="7", name="den", ended_session=True),
    SATELLITE,
    SatelliteRecord(name="hall"),
    SERVER,
    ServerStatus(server_id="x", name="x", version="1", sessions_active=0),
    SettingsChanged(SETTINGS, OPTIONS),
    # Home Assistant's timers (timers/).
    TimerEvent(
        request_id="8",
        satellite="den",
        change="started",
        timer=TimerInfo("t1", 300, name="pasta", start_minutes=5, language="en"),
    ),
    TimerEvent(satellite="den", change="updated", timer=TimerInfo("t1", 120, active=False)),
    TimerDone(request_id="8", delivered=True),
]


@pytest.mark.parametrize(("source", "vendored"), COPIES, ids=lambda path: path.name)
def test_the_integrations_copy_is_the_servers_byte_for_byte(source: Path, vendored: Path) -> None:
    assert vendored.read_bytes() == source.read_bytes(), (
        f"{vendored.relative_to(ROOT)} differs from its source: "
        f"cp {source.relative_to(ROOT)} {vendored.relative_to(ROOT)}"
    )


@pytest.mark.parametrize("source", [source for source, _ in COPIES], ids=lambda path: path.name)
def test_the_module_imports_only_the_standard_library_and_wyoming(source: Path) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import breaks the integration's copy"
            imported.add(str(node.module).split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
    assert imported - set(sys.stdlib_module_names) == {"wyoming"}


@pytest.mark.parametrize("message", EVENTS, ids=lambda m: type(m).__name__)
def test_every_event_comes_back_as_it_went_over_the_wire(message: Eventable) -> None:
    wire = io.BytesIO()
    write_event(message.event(), wire)  # what a socket carries: JSON lines and payloads
    wire.seek(0)
    received = read_event(wire)
    assert received is not None
    kinds = [kind for kind in {type(m) for m in EVENTS} if kind.is_type(received.type)]
    assert kinds == [type(message)], "each event type is one class's"
    assert type(message).from_event(received) == message


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("locara-control", {"id": 7}, "'id' must be a string or null, not 7"),
    ("locara-settings", {}, "locara-settings: 'settings' is missing"),
    ("locara-settings", {"settings": []}, "'settings' must be an object"),
    ("locara-set-muted", {"satellite": "den"}, "'muted' is missing"),
    ("locara-set-muted", {"token": "t", "satellite": "den", "muted": True}, "'token' is not one"),
    ("locara-enrol", {"name": " "}, "'name' must be a non-blank string"),
    ("locara-unenrol", {}, "'name' is missing"),
    ("locara-enrol-done", {"name": "den"}, "'pairing_code' is missing"),
    ("locara-unenrol-done", {"name": "den", "ended_session": 1}, "'ended_session' must be"),
    ("locara-set-muted", {"satellite": "den", "muted": "yes"}, "'muted' must be true or false"),
    ("locara-set-muted", {"satellite": " ", "muted": True}, "'satellite' must be a non-blank"),
    ("locara-set-muted", {"satellite": 3, "muted": True}, "'satellite' must be a non-blank"),
    (
        "locara-set-muted",
        {"satellite": "den", "muted": True, "volume": 3},
        "'volume' is not one of its fields",
    ),
    ("locara-set-room", {"satellite": "den", "persona": 1}, "'persona' must be a string or null"),
    ("locara-set-room", {"persona": "pirate"}, "give either a satellite or an area"),
    (
        "locara-set-room",
        {"satellite": "den", "area": "Den", "persona": "pirate"},
        "give either a satellite or an area",
    ),
    ("locara-set-room", {"satellite": "den"}, "nothing to change"),
    (
        "locara-set-room",
        {"satellite": "den", "end_of_turn": "silence"},
        "'end_of_turn' is not one of its fields",
    ),
    ("locara-announce", {"text": "hi"}, "give a satellite or an area"),
    ("locara-announce", {"text": "  ", "area": "Den"}, "'text' must be a non-blank string"),
    ("locara-announce", {"text": "hi", "area": "Den", "listen": 1}, "'listen' must be true"),
    (
        "locara-announce",
        {"text": "hi", "satellite": "den", "chime_bytes": 3},
        "'chime_bytes' and 'media_bytes' (3 + 0) must add up to the payload's 0 bytes",
    ),
    ("locara-announce", {"text": "hi", "area": "Den", "answer": True}, "from one satellite"),
    (
        "locara-announce",
        {"text": "hi", "satellite": "den", "answer": True, "answer_timeout_s": 0},
        "'answer_timeout_s' must be over 0 and at most 120",
    ),
    (
        "locara-announce",
        {"text": "hi", "satellite": "den", "extra_system_prompt": "Be brief."},
        "'extra_system_prompt' goes with 'listen' (not 'answer')",
    ),
    (
        "locara-announce",
        {"text": "hi", "satellite": "den", "listen": True, "extra_system_prompt": "x" * 4001},
        "'extra_system_prompt' is over 4000 characters",
    ),
    (
        "locara-announce",
        {"text": "hi", "satellite": "den", "listen": True, "extra_system_prompt": 3},
        "'extra_system_prompt' must be a string or null",
    ),
    ("locara-announce-done", {"satellites": [], "answer": 1}, "'answer' must be a string"),
    (
        "locara-announce-done",
        {"satellites": ["den"], "unconfirmed": "den"},
        "'unconfirmed' must be a list of strings",
    ),
    ("locara-home-answer", {"handled": True}, "'id' is missing"),
    ("locara-home-answer", {"id": "h1", "handled": "no"}, "'handled' must be true or false"),
    ("locara-home-answer", {"id": "h1", "handled": True, "speech": 2}, "'speech' must be"),
    ("locara-satellite", {"name": "den", "connected": True, "muted": False}, "'state' is missing"),
    (
        "locara-server",
        {**SERVER.event().data, "sessions_active": -1},
        "'sessions_active' must be a whole number of 0 or more, not -1",
    ),
    (
        "locara-server",
        {**SERVER.event().data, "backends": {"b": {"healthy": "yes"}}},
        "locara-server: backends: b: 'healthy' must be true or false",
    ),
    (
        "locara-control-state",
        {**STATE.event().data, "satellites": [{"name": "den"}]},
        "locara-control-state: satellites[0]: 'connected' is missing",
    ),
    (
        "locara-settings-changed",
        {"settings": {}, "options": {**OPTIONS.__dict__, "voices": [1]}},
        "options: 'voices' must be a list of strings",
    ),
    ("locara-announce-done", {"satellites": "den"}, "'satellites' must be a list of strings"),
    (
        "locara-timer",
        {"satellite": "den", "change": "rang", "timer": {"id": "t", "seconds_left": 1}},
        "'change' must be one of started, updated, cancelled, finished",
    ),
    (
        "locara-timer",
        {"satellite": "den", "change": "started", "timer": {"id": "t", "seconds_left": -1}},
        "locara-timer: timer: 'seconds_left' must be a whole number of 0 or more",
    ),
    ("locara-timer", {"satellite": "den", "change": "started"}, "'timer' is missing"),
    ("locara-timer-done", {"delivered": "yes"}, "'delivered' must be true or false"),
]


@pytest.mark.parametrize(("event_type", "data", "words"), REFUSED)
def test_bad_fields_are_refused_with_a_text_that_names_them(
    event_type: str, data: dict[str, Any], words: str
) -> None:
    kinds = [kind for kind in {type(m) for m in EVENTS} if kind.is_type(event_type)]
    with pytest.raises(ControlEventError) as refused:
        kinds[0].from_event(Event(event_type, data))
    assert isinstance(refused.value, ValueError)
    assert words in str(refused.value)


def test_a_long_bad_value_is_cut_short_in_the_text() -> None:
    with pytest.raises(ControlEventError) as refused:
        SetMuted.from_event(Event("locara-set-muted", {"satellite": "den", "muted": "x" * 500}))
    assert len(str(refused.value)) < 120


def test_an_impossible_patch_cannot_even_be_built() -> None:
    with pytest.raises(ControlEventError, match="either a satellite or an area"):
        SetRoom(changes={"persona": "pirate"})
    with pytest.raises(ControlEventError, match="'volume' is not a room setting"):
        SetRoom(satellite="den", changes={"volume": "3"})
    assert control.ROOM_SETTINGS == ("backend", "persona")
