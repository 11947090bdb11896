"""The control channel over TCP against a real server: the token, pushes, live settings,
announcements and home control."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from wyoming.client import AsyncClient, AsyncTcpClient
from wyoming.event import Event

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.frame_stream import request_session
from locara_wyoming.config import LocaraConfig, PersonaConfig
from locara_wyoming.control.settings import SettingsFile
from locara_wyoming.protocol.session import SessionRequest

from .support.control_client import control, token_of
from .support.rooms import satellite
from .support.servers import TEST_CONFIG
from .support.speech import Speech

# A real server, but for the settings store, which imports the stages (faster-whisper) too.

CONFIG = (
    TEST_CONFIG
    + """
[[personas]]
name = "pirate"
system_prompt = "You are a pirate. Answer in one short sentence."
home_control = "llm_only"
"""
)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("control"), CONFIG) as process:
        yield process


@pytest.mark.models
async def test_the_token_is_private_shown_once_and_guards_every_change(
    server: ServerProcess,
) -> None:
    token_file = server.workdir / "data" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_of(server)
    assert len(token) >= 32
    async with AsyncTcpClient(server.host, server.port) as client:
        # Requests on a connection that did not prove it holds the token, even with the
        # token in them as before (it must never cross the network).
        for request in (
            Event("locara-control", {}),
            Event("locara-settings", {"token": token, "settings": {"muted": ["a"]}}),
            Event("locara-announce", {"token": "", "text": "hello", "satellite": "a"}),
            Event("locara-enrol", {"name": "intruder"}),
        ):
            await client.write_event(request)
            answer = await asyncio.wait_for(client.read_event(), 10)
            assert answer is not None and answer.type == "error", answer
            assert answer.data["code"] == "unauthorized", answer.data
        # The connection stays open, and the voice programs need no token.
        await client.write_event(Event("describe"))
        info = await asyncio.wait_for(client.read_event(), 10)
        assert info is not None and info.type == "info"
    assert not (server.workdir / "data" / "settings.json").exists()
    assert any("Created the control token in" in line for line in server.log)
    assert not any(token in line for line in server.log), "the token is never logged"
    printed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locara_wyoming", "token", "--data-dir", str(token_file.parent),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await printed.communicate()
    assert printed.returncode == 0 and output.decode().strip() == token


@pytest.mark.models
async def test_a_subscriber_sees_a_satellite_come_talk_and_go(
    server: ServerProcess, speech: Speech
) -> None:
    async with control(server.host, server.port, token_of(server)) as hub:
        assert (
            hub.state["server"]["server_id"]
            == (server.workdir / "data" / "server_id").read_text().strip()
        )
        assert "voice-pipeline-default" in hub.state["options"]["backends"]
        assert "pirate" in hub.state["options"]["personas"]
        async with satellite(server, "den", area="Den", enrolled=True) as room:
            joined = await hub.push("locara-satellite", lambda d: d["name"] == "den")
            assert joined["connected"] and joined["area"] == "Den"
            assert joined["persona"] == "locara" and joined["backend"] == "voice-pipeline-default"
            server_state = await hub.push("locara-server", lambda d: d["sessions_active"] == 1)
            assert server_state["backends"]["voice-pipeline-default"]["healthy"] is True
            said = await room.say(speech.at_16k("What colour is the sky?"))
            _, reply = await room.reply_after(said.voiced_end)
            # Whisper tiny may mishear Piper ("this guy"): any words pushed will do.
            heard = await hub.push("locara-satellite", lambda d: bool(d["last_transcript"]))
            assert heard["state"] in ("thinking", "speaking", "listening")
            await hub.push("locara-satellite", lambda d: d["state"] == "speaking")
            await asyncio.wait_for(reply.done.wait(), 60)
            answered = await hub.push("locara-satellite", lambda d: bool(d["last_reply"]))
            assert answered["state"] == "listening"
            latency = await hub.push("locara-server", lambda d: d["last_v2v_ms"] is not None)
            assert 0 < latency["last_v2v_ms"] < 30_000
        left = await hub.push(
            "locara-satellite", lambda d: d["name"] == "den" and not d["connected"]
        )
        assert left["last_transcript"] == heard["last_transcript"]


@pytest.mark.models
async def test_settings_move_a_live_session_and_persist_atomically(
    server: ServerProcess, speech: Speech
) -> None:
    settings_file = server.workdir / "data" / "settings.json"
    async with (
        control(server.host, server.port, token_of(server)) as hub,
        satellite(server, "attic", enrolled=True) as room,
    ):
        assert room.client.started is not None and room.client.started.persona == "locara"
        asked_at = time.monotonic()
        done = await hub.request(
            "locara-settings",
            settings={"rooms": [{"satellite": "attic", "persona": "pirate"}], "muted": []},
        )
        assert done.type == "locara-settings-done", done.data
        moved = await room.wait_for("locara-session", asked_at)
        assert moved.event.data["persona"] == "pirate"
        assert moved.event.data["session_id"] == room.client.started.session_id
        changed = await hub.push("locara-settings-changed", lambda d: True)
        assert changed["settings"]["rooms"] == [{"satellite": "attic", "persona": "pirate"}]
        saved = json.loads(settings_file.read_text())
        assert saved["rooms"] == [{"satellite": "attic", "persona": "pirate"}]

        # Muted: the room's words never reach the models; the session stays.
        await hub.request("locara-settings", settings={"muted": ["attic"]})
        await hub.push("locara-satellite", lambda d: d["name"] == "attic" and d["muted"])
        said = await room.say(speech.at_16k("Can you hear me?"))
        await asyncio.sleep(3)
        assert not room.seen_of("transcript", said.voiced_start)

        # A bad change is refused whole and the file is left as it was.
        before = settings_file.read_bytes()
        personas = hub.state["settings"]["personas"]
        for bad, word in (
            (
                {"personas": [*personas, {"name": "x", "voice": "no-such-voice"}]},
                "no-such-voice",
            ),
            ({"default_backend": "nonsense-1"}, "nonsense-1"),
            ({"rooms": [{"satellite": "attic", "persona": "ghost"}]}, "ghost"),
            ({"volume": 3}, "volume"),
        ):
            refused = await hub.request("locara-settings", settings=bad)
            assert refused.type == "error" and refused.data["code"] == "bad-request"
            assert word in refused.data["text"], refused.data
        assert settings_file.read_bytes() == before
        await hub.request("locara-settings", settings={"muted": []})

    # The settings outlive the server.
    await server.stop()
    await server.start()
    async with satellite(server, "attic", enrolled=True) as room:
        assert room.client.started is not None and room.client.started.persona == "pirate"
    assert any("Settings from" in line for line in server.log)


@pytest.mark.models
async def test_home_assistant_answers_first_and_the_llm_what_it_does_not_handle(
    server: ServerProcess, speech: Speech
) -> None:
    async def home(request: dict[str, Any]) -> tuple[bool, str | None]:
        if {"light", "kitchen"} & set(re.findall(r"[a-z]+", request["text"].lower())):
            return True, "The kitchen light is on."
        return False, None

    async with control(server.host, server.port, token_of(server)) as hub:
        hub.answer_home = home
        await hub.request("locara-settings", settings={"rooms": []})
        async with satellite(server, "kitchen", area="Kitchen", enrolled=True) as room:
            said = await room.say(speech.at_16k("Turn on the kitchen light."))
            _, reply = await room.reply_after(said.voiced_end)
            await asyncio.wait_for(reply.done.wait(), 60)
            handled = await room.wait_for("handled", said.voiced_end)
            assert handled.event.data["text"] == "The kitchen light is on."
            asked = hub.home_requests[-1]
            assert asked["satellite"] == "kitchen" and asked["area"] == "Kitchen"
            assert asked["conversation_id"] == room.client.started.session_id  # type: ignore[union-attr]

            said = await room.say(speech.at_16k("What is the capital of France?"))
            _, reply = await room.reply_after(said.voiced_end)
            await asyncio.wait_for(reply.done.wait(), 60)
            handled = await room.wait_for("handled", said.voiced_end)
            # Asked about what the server heard (Whisper tiny once heard "friends").
            transcript = await room.wait_for("transcript", said.voiced_end)
            assert hub.home_requests[-1]["text"] == transcript.event.data["text"]
            assert handled.event.data["text"] and "kitchen light" not in handled.event.data["text"]

        # A persona that only talks to the LLM never asks Home Assistant.
        asked_before = len(hub.home_requests)
        await hub.request(
            "locara-settings", settings={"rooms": [{"area": "Loft", "persona": "pirate"}]}
        )
        async with satellite(server, "loft", area="Loft", enrolled=True) as room:
            said = await room.say(speech.at_16k("Turn on the light."))
            _, reply = await room.reply_after(said.voiced_end)
            await asyncio.wait_for(reply.done.wait(), 60)
            handled = await room.wait_for("handled", said.voiced_end)
        assert len(hub.home_requests) == asked_before
        assert handled.event.data["text"] != "The kitchen light is on."
        await hub.request("locara-settings", settings={"rooms": []})

        # An unenrolled satellite (the tests' server is in open mode) never reaches Home
        # Assistant, whatever it says, nor do announcements reach it.
        async with satellite(server, "shed", area="Kitchen") as stranger:
            said = await stranger.say(speech.at_16k("Turn on the kitchen light."))
            _, reply = await stranger.reply_after(said.voiced_end)
            await asyncio.wait_for(reply.done.wait(), 60)
            handled = await stranger.wait_for("handled", said.voiced_end)
            assert len(hub.home_requests) == asked_before
            assert handled.event.data["text"] != "The kitchen light is on."
            missed = await hub.request("locara-announce", text="Hello.", satellite="shed")
            assert missed.type == "error" and missed.data["code"] == "not-found", missed


@pytest.mark.models
async def test_an_announcement_is_spoken_then_the_satellite_listens(server: ServerProcess) -> None:
    async with control(server.host, server.port, token_of(server)) as hub:
        async with satellite(server, "hall", area="Hall", enrolled=True) as room:
            done = await hub.request(
                "locara-announce", text="Dinner is ready.", area="Hall", listen=True
            )
            assert done.type == "locara-announce-done" and done.data["satellites"] == ["hall"]
            handled = await room.wait_for("handled", 0)
            assert handled.event.data["text"] == "Dinner is ready."
            reply_id = handled.event.data["context"]["reply_id"]
            reply = room.speaker.replies[reply_id]
            await asyncio.wait_for(reply.done.wait(), 30)
            assert sum(len(a) for a in reply.received_audio) > 0.5 * reply.audio.rate
            assert room.seen_of("locara-listen")
        missing = await hub.request("locara-announce", text="Hello?", satellite="nobody")
        assert missing.type == "error" and missing.data["code"] == "not-found"


@pytest.mark.models
async def test_requests_are_answered_when_a_satellite_leaves_as_they_act_on_it(
    server: ServerProcess,
) -> None:
    """A settings change that moves a session, or an announcement to it, at the moment its
    satellite hangs up: the request is still answered, and so are the next ones."""
    routes: list[list[dict[str, str]]] = [[{"area": "Loft", "persona": "pirate"}], []]
    async with control(server.host, server.port, token_of(server)) as hub:
        for round_ in range(12):
            async with AsyncClient.from_uri(server.uri) as client:
                await request_session(client, SessionRequest("loft", area="Loft"))
                if round_ % 3 == 2:
                    request = hub.request("locara-announce", text="Dinner is ready.", area="Loft")
                else:
                    request = hub.request("locara-settings", settings={"rooms": routes[round_ % 2]})
                asking = asyncio.create_task(request)
                for _ in range(round_ % 4):  # the request's bytes leave before, or after, ours
                    await asyncio.sleep(0)
            answer = await asyncio.wait_for(asking, 30)
            assert answer.type.endswith("-done") or answer.data["code"] == "not-found", answer
        still = await asyncio.wait_for(hub.request("locara-settings", settings={"rooms": []}), 30)
        assert still.type == "locara-settings-done"
    assert not [line for line in server.log if "Traceback" in line]


@pytest.mark.models
async def test_two_satellites_muted_at_the_same_moment_are_both_muted(
    server: ServerProcess,
) -> None:
    """Two mute patches sent at once on two connections (one script turning on two of Home
    Assistant's switches): the server applies each to what the other left."""
    token = token_of(server)
    async with (
        control(server.host, server.port, token) as first,
        control(server.host, server.port, token) as second,
        AsyncClient.from_uri(server.uri) as cellar,
        AsyncClient.from_uri(server.uri) as garage,
    ):
        await request_session(cellar, SessionRequest("cellar"))
        await request_session(garage, SessionRequest("garage"))
        for muted in (True, False):
            for hub in (first, second):
                hub.pushes.clear()
            answers = await asyncio.gather(
                first.request("locara-set-muted", satellite="cellar", muted=muted),
                second.request("locara-set-muted", satellite="garage", muted=muted),
            )
            assert [answer.type for answer in answers] == ["locara-settings-done"] * 2, answers
            seen = [
                set(answer.data["settings"]["muted"]) & {"cellar", "garage"} for answer in answers
            ]
            if muted:
                assert "cellar" in seen[0] and "garage" in seen[1]
                assert {"cellar", "garage"} in seen, "the later answer has both"
            else:
                assert set() in seen
            for hub in (first, second):
                await hub.push(
                    "locara-settings-changed",
                    lambda d, muted=muted: (
                        {"cellar", "garage"} <= set(d["settings"]["muted"])
                        if muted
                        else not {"cellar", "garage"} & set(d["settings"]["muted"])
                    ),
                )
                for name in ("cellar", "garage"):
                    await hub.push(
                        "locara-satellite",
                        lambda d, name=name, muted=muted: d["name"] == name and d["muted"] is muted,
                    )
            if muted:
                async with control(server.host, server.port, token) as third:
                    assert {"cellar", "garage"} <= set(third.state["settings"]["muted"])
                    records = {s["name"]: s for s in third.state["satellites"]}
                    assert records["cellar"]["muted"] and records["garage"]["muted"]
                saved = json.loads((server.workdir / "data" / "settings.json").read_text())
                assert {"cellar", "garage"} <= set(saved["muted"])


@pytest.mark.models
async def test_a_room_patch_changes_one_entry_and_moves_its_session(server: ServerProcess) -> None:
    async with (
        control(server.host, server.port, token_of(server)) as hub,
        satellite(server, "study", area="Study", enrolled=True) as room,
    ):
        await hub.request(
            "locara-settings", settings={"rooms": [{"area": "Den", "persona": "pirate"}]}
        )
        # The satellite's persona and backend at the same moment: both kept, in one entry.
        asked_at = time.monotonic()
        answers = await asyncio.gather(
            hub.request("locara-set-room", satellite="study", persona="pirate"),
            hub.request("locara-set-room", satellite="study", backend="voice-pipeline-default"),
        )
        assert [answer.type for answer in answers] == ["locara-settings-done"] * 2, answers
        study = {"satellite": "study", "persona": "pirate", "backend": "voice-pipeline-default"}
        assert {"area": "Den", "persona": "pirate"} in answers[-1].data["settings"]["rooms"]
        assert study in answers[0].data["settings"]["rooms"] + answers[1].data["settings"]["rooms"]
        moved = await room.wait_for("locara-session", asked_at)
        assert moved.event.data["persona"] == "pirate"

        # An area's entry, by its name; null clears a key back to what the defaults give.
        done = await hub.request("locara-set-room", area="Study", persona="locara")
        assert {"area": "Study", "persona": "locara"} in done.data["settings"]["rooms"]
        asked_at = time.monotonic()
        done = await hub.request("locara-set-room", satellite="study", persona=None)
        rooms = done.data["settings"]["rooms"]
        assert {"satellite": "study", "backend": "voice-pipeline-default"} in rooms
        await hub.push(
            "locara-satellite", lambda d: d["name"] == "study" and d["persona"] == "locara"
        )
        done = await hub.request("locara-set-room", satellite="study", backend=None)
        assert not [r for r in done.data["settings"]["rooms"] if r.get("satellite") == "study"]
        saved = json.loads((server.workdir / "data" / "settings.json").read_text())
        assert saved["rooms"] == done.data["settings"]["rooms"]
        await hub.request("locara-settings", settings={"rooms": []})


@pytest.mark.models
async def test_bad_patches_are_refused_and_change_nothing(server: ServerProcess) -> None:
    settings_file = server.workdir / "data" / "settings.json"
    async with control(server.host, server.port, token_of(server)) as hub:
        await hub.request("locara-settings", settings={"rooms": [], "muted": ["porch"]})
        before = settings_file.read_bytes()
        assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600, "the prompts are private"
        for request, fields, words in (
            ("locara-set-room", {"satellite": "porch", "persona": "ghost"}, "'ghost'"),
            ("locara-set-room", {"area": "Porch", "backend": "nonsense-1"}, "nonsense-1"),
            ("locara-set-room", {"satellite": "porch", "persona": 7}, "'persona' must be"),
            ("locara-set-room", {"satellite": "porch", "volume": "3"}, "'volume'"),
            ("locara-set-room", {"satellite": "porch", "area": "Porch", "persona": "x"}, "either"),
            ("locara-set-room", {"satellite": "porch"}, "nothing to change"),
            ("locara-set-muted", {"satellite": "porch", "muted": "no"}, "'muted' must be"),
            ("locara-set-muted", {"muted": False}, "'satellite' is missing"),
            ("locara-set-muted", {"satellite": "porch", "muted": False, "area": "x"}, "'area'"),
        ):
            refused = await hub.request(request, **fields)
            assert refused.type == "error", refused
            assert refused.data["code"] == "bad-request", refused.data
            assert words in refused.data["text"], refused.data
            assert refused.data["request_id"], "the error names the request it refuses"
        with_token = await hub.request("locara-set-muted", token=0, satellite="porch", muted=False)
        assert with_token.data["code"] == "bad-request", with_token.data
        assert "'token' is not one of its fields" in with_token.data["text"], with_token.data
        assert settings_file.read_bytes() == before
        assert not [p for p in hub.pushes if p.type == "locara-settings-changed"][1:]
        await hub.request("locara-set-muted", satellite="porch", muted=False)


WRITER = """
import sys
from pathlib import Path
from locara_wyoming.config import LocaraConfig, PersonaConfig
from locara_wyoming.control.settings import SettingsFile
from locara_wyoming.control.settings import SettingsFile
store = SettingsFile(Path(sys.argv[1]))
configs = [LocaraConfig(personas=[PersonaConfig(name=f"p{i}", system_prompt="x" * 20000)])
           for i in range(2)]
print("writing", flush=True)
i = 0
while True:
    store.save(configs[i % 2])
    i += 1
"""


def test_a_killed_writer_leaves_whole_settings(tmp_path: Path) -> None:
    """Killed at any moment, the file holds the old settings or the new, never a part."""
    for round_number in range(15):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        time.sleep(0.05 + 0.013 * round_number)  # somewhere in a write, or between two
        writer.kill()
        writer.wait()
        saved = json.loads((tmp_path / "settings.json").read_text())
        assert [p["name"] for p in saved["personas"]] in (["p0"], ["p1"])
        assert len(saved["personas"][0]["system_prompt"]) == 20000
        assert LocaraConfig(personas=[PersonaConfig(**saved["personas"][0])])
    # The next start reads the last whole settings and sweeps the killed writers' drafts.
    config = SettingsFile(tmp_path).apply_to(LocaraConfig())
    assert config.personas[0].name in ("p0", "p1")
    assert os.listdir(tmp_path) == ["settings.json"]
