"""Trust on the home network, tried as a stranger on the same network would (a guest's
phone, a compromised plug), against real servers on real sockets: enrolment, the
exchange that proves both ends (TLS, then HMAC over fresh nonces), sessions that belong
to who opened them, a status that tells strangers nothing, and the `handle` program
kept away from the rooms' conversations (docs/security.md).

Two servers: one admits only enrolled satellites (the default), one is in open mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_write_event

from locara_wyoming.bench import client as wy
from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.protocol.auth import (
    ROLE_CONTROL,
    ROLE_SATELLITE,
    AuthChallenge,
    AuthError,
    AuthHello,
    PairingCode,
    SecureTcpClient,
    client_tls_context,
    new_nonce,
    token_key,
)
from locara_wyoming.protocol.session import SessionStarted

from .support.control_client import control, token_of
from .support.enrolment import enrol, satellites_command
from .support.prompt_tap import PromptTap
from .support.raw_wyoming import (
    expect_closed,
    expect_error,
    header,
    next_event,
    raw_connection,
)
from .support.rooms import satellite
from .support.speech import Speech

pytestmark = pytest.mark.models

ENROLLED_ONLY = "[llm]\nmax_tokens = 30\n"
OPEN = ENROLLED_ONLY + "[security]\nopen_satellites = true\n"
"""Open mode from the file; the closed server also leaves out `--open-satellites`."""


@pytest.fixture(scope="module")
async def closed_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(
        tmp_path_factory.mktemp("closed"), ENROLLED_ONLY, open_satellites=False
    ) as server:
        yield server


@pytest.fixture(scope="module")
async def open_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("open"), OPEN) as server:
        yield server


def run_pipeline(name: str, resume: str | None = None) -> Event:
    request: dict[str, Any] = {"protocol": 1, "name": name}
    if resume is not None:
        request["resume"] = resume
    return Event("run-pipeline", {"locara": request})


async def answer(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), 30)
    assert event is not None, "the server closed the connection"
    return event


@contextlib.asynccontextmanager
async def proven_room(
    server: ServerProcess, code: PairingCode, resume: str | None = None
) -> AsyncIterator[tuple[SecureTcpClient, SessionStarted]]:
    """An enrolled satellite's session, opened after both ends proved themselves."""
    async with SecureTcpClient(server.host, server.port) as client:
        await client.authenticate(
            ROLE_SATELLITE, code.name, code.key, code.fingerprint, code.server_id
        )
        await client.write_event(run_pipeline(code.name, resume))
        started = await answer(client)
        assert SessionStarted.is_type(started.type), started
        yield client, SessionStarted.from_event(started)


async def still_answered(client: AsyncTcpClient) -> None:
    """The session's connection is served: a ping gets its pong."""
    await client.write_event(Event("ping", {"text": "there?"}))
    while (await answer(client)).type != "pong":
        pass


# -- enrolment --------------------------------------------------------------------------


async def test_an_unenrolled_satellite_is_refused_and_told_how_to_enrol(
    closed_server: ServerProcess,
) -> None:
    async with AsyncTcpClient(closed_server.host, closed_server.port) as client:
        await client.write_event(run_pipeline("attic"))
        refused = await answer(client)
        assert refused.type == "error" and refused.data["code"] == "unauthorized", refused
        assert "locara-wyoming satellites add" in refused.data["text"]
    assert any("No satellite is enrolled" in line for line in closed_server.log[:200])


async def test_enrolment_is_kept_owner_only_listed_and_removed(
    closed_server: ServerProcess,
) -> None:
    code = await enrol(closed_server, "pantry")
    kept = closed_server.workdir / "data" / "satellites.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    for secret in ("tls/key.pem", "token"):
        mode = (closed_server.workdir / "data" / secret).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, secret
    status, listed = await satellites_command(closed_server, "list")
    assert status == 0 and "pantry" in listed and code.key.hex() not in listed, listed
    assert not any(code.key.hex() in line for line in closed_server.log)
    status, removed = await satellites_command(closed_server, "remove", "pantry")
    assert status == 0, removed
    status, again = await satellites_command(closed_server, "remove", "pantry")
    assert status == 1 and "no satellite named 'pantry'" in again, again
    status, blank = await satellites_command(closed_server, "add", " ")
    assert status == 2 and "must not be blank" in blank, blank


async def test_an_enrolled_satellite_proves_itself_and_its_server(
    closed_server: ServerProcess,
) -> None:
    code = await enrol(closed_server, "kitchen")
    async with proven_room(closed_server, code) as (client, started):
        assert started.session_id
        # A proven connection is that satellite, and no other.
        await client.write_event(run_pipeline("garage"))
        refused = await answer(client)
        assert refused.type == "error" and refused.data["code"] in ("forbidden", "out-of-order")

    # A key that is not the satellite's: the client finds the server's proof wrong, and
    # sends no proof of its own.
    async with SecureTcpClient(closed_server.host, closed_server.port) as client:
        with pytest.raises(AuthError, match="could not prove"):
            await client.authenticate(ROLE_SATELLITE, code.name, bytes(32), code.fingerprint)

    # A pinned certificate that is not the server's: refused before any proof.
    async with SecureTcpClient(closed_server.host, closed_server.port) as client:
        with pytest.raises(AuthError, match="certificate changed"):
            await client.authenticate(ROLE_SATELLITE, code.name, code.key, "0" * 64)

    # Another server id than the one paired with.
    async with SecureTcpClient(closed_server.host, closed_server.port) as client:
        with pytest.raises(AuthError, match="not 0000"):
            await client.authenticate(ROLE_SATELLITE, code.name, code.key, code.fingerprint, "0000")


async def test_a_wrong_proof_is_refused_and_the_connection_closed(
    closed_server: ServerProcess,
) -> None:
    """What a stranger who guesses sends: the server answers unauthorized and hangs up."""
    code = await enrol(closed_server, "hall")
    reader, writer = await asyncio.open_connection(closed_server.host, closed_server.port)
    try:
        await async_write_event(Event("locara-tls"), writer)
        ready = await asyncio.wait_for(reader.readline(), 10)
        assert ready.startswith(b'{"type": "locara-tls-ready"'), ready
        await writer.start_tls(client_tls_context())
        hello = AuthHello(ROLE_SATELLITE, code.name, new_nonce())
        await async_write_event(hello.event(), writer)
        challenge = await next_event(reader)
        assert challenge is not None
        AuthChallenge.from_event(challenge)
        await async_write_event(Event("locara-auth-proof", {"proof": "ab" * 32}), writer)
        await expect_error(reader, "unauthorized")
        await expect_closed(reader)
    finally:
        writer.close()
    await closed_server.log.wait_for("a wrong proof for satellite 'hall'", timeout_s=5)


async def test_plain_bytes_sent_after_asking_for_tls_are_refused(
    closed_server: ServerProcess,
) -> None:
    """The STARTTLS injection: whatever came before TLS must not count as sent inside it."""
    async with raw_connection(closed_server) as (reader, writer):
        body = json.dumps({"locara": {"protocol": 1, "name": "kitchen"}}).encode()
        writer.write(
            header(type="locara-tls") + header(type="run-pipeline", data_length=len(body)) + body
        )
        await expect_error(reader, "unauthorized")
        await expect_closed(reader)


# -- sessions belong to who opened them ---------------------------------------------------


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_a_stranger_cannot_open_a_session_as_an_enrolled_satellite(
    mode: str, closed_server: ServerProcess, open_server: ServerProcess
) -> None:
    server = closed_server if mode == "closed" else open_server
    code = await enrol(server, f"study-{mode}")
    async with proven_room(server, code) as (room, _):
        async with AsyncTcpClient(server.host, server.port) as stranger:
            await stranger.write_event(run_pipeline(code.name))
            refused = await answer(stranger)
            assert refused.type == "error" and refused.data["code"] == "forbidden", refused
            assert "enrolled satellite" in refused.data["text"]
        await still_answered(room)
        async with control(server.host, server.port, token_of(server)) as hub:
            rooms = [record["name"] for record in hub.state["satellites"] if record["connected"]]
            assert rooms.count(code.name) == 1, hub.state["satellites"]


async def test_a_stranger_cannot_resume_a_rooms_session(open_server: ServerProcess) -> None:
    code = await enrol(open_server, "bedroom")
    async with proven_room(open_server, code) as (room, started):
        async with AsyncTcpClient(open_server.host, open_server.port) as stranger:
            await stranger.write_event(run_pipeline("attic", resume=started.session_id))
            refused = await answer(stranger)
            assert refused.type == "error" and refused.data["code"] == "forbidden", refused
        await still_answered(room)
        # The satellite itself may: on a new connection it takes its session back.
        async with proven_room(open_server, code, resume=started.session_id) as (_, again):
            assert again.session_id == started.session_id


async def test_an_open_mode_name_is_not_taken_over_from_elsewhere(
    open_server: ServerProcess,
) -> None:
    """In open mode a second live session under a name already connected is refused
    unless it comes from the same address (the satellite reconnecting)."""
    assert open_server.log.matching("security.open_satellites is on"), "warned at start"
    name = f"den-{uuid.uuid4().hex[:6]}"
    async with AsyncTcpClient(open_server.host, open_server.port) as first:
        await first.write_event(run_pipeline(name))
        assert (await answer(first)).type == "locara-session"
        # Same address (loopback): the satellite is back; the first connection is let go.
        async with AsyncTcpClient(open_server.host, open_server.port) as second:
            await second.write_event(run_pipeline(name))
            assert (await answer(second)).type == "locara-session"
            assert await asyncio.wait_for(first.read_event(), 10) is None
    await open_server.log.wait_for(f"{name} is back on a new connection", timeout_s=5)


async def test_removing_a_satellite_ends_its_session_at_once(
    closed_server: ServerProcess,
) -> None:
    code = await enrol(closed_server, "porch")
    async with proven_room(closed_server, code) as (room, _):
        status, _output = await satellites_command(closed_server, "remove", "porch")
        assert status == 0
        async with asyncio.timeout(5):
            while await room.read_event() is not None:
                pass
    async with SecureTcpClient(closed_server.host, closed_server.port) as client:
        with pytest.raises(AuthError) as refused:
            await client.authenticate(
                ROLE_SATELLITE, code.name, code.key, code.fingerprint, code.server_id
            )
        assert refused.value.code == "unauthorized"
        assert "not an enrolled satellite" in str(refused.value)


async def test_home_assistant_enrols_and_removes_satellites(
    closed_server: ServerProcess,
) -> None:
    async with control(closed_server.host, closed_server.port, token_of(closed_server)) as hub:
        done = await hub.request("locara-enrol", name="nursery")
        assert done.type == "locara-enrol-done", done
        code = PairingCode.decode(done.data["pairing_code"])
        assert code.name == "nursery"
        async with proven_room(closed_server, code):
            removed = await hub.request("locara-unenrol", name="nursery")
            assert removed.type == "locara-unenrol-done", removed
            assert removed.data["ended_session"] is True
        missing = await hub.request("locara-unenrol", name="nursery")
        assert missing.type == "error" and missing.data["code"] == "not-found", missing


async def test_the_token_proves_home_assistant_and_nothing_else(
    closed_server: ServerProcess,
) -> None:
    async with SecureTcpClient(closed_server.host, closed_server.port) as client:
        with pytest.raises(AuthError, match="could not prove"):
            await client.authenticate(ROLE_CONTROL, "intruder", token_key("not-the-token"))
    assert not any(token_of(closed_server) in line for line in closed_server.log)


# -- what strangers can see and reach -----------------------------------------------------


async def test_status_tells_a_stranger_no_names_ids_or_words(
    closed_server: ServerProcess,
) -> None:
    code = await enrol(closed_server, "library")
    async with proven_room(closed_server, code) as (room, started):
        async with AsyncTcpClient(closed_server.host, closed_server.port) as stranger:
            await stranger.write_event(Event("locara-status"))
            status = await answer(stranger)
        told = json.dumps(status.data)
        assert status.data["sessions"] == [] and status.data["sessions_active"] >= 1, told
        assert started.session_id not in told and "library" not in told, told
        # The satellite sees its own session; Home Assistant sees them all.
        await room.write_event(Event("locara-status"))
        while (own := await answer(room)).type != "locara-status":
            pass
        assert [s["session_id"] for s in own.data["sessions"]] == [started.session_id]


async def test_handle_cannot_read_or_extend_a_rooms_conversation(
    delegating_server: ServerProcess, prompt_tap: PromptTap, speech: Speech
) -> None:
    """A room's history is the room's: `handle` given the room's session id as its
    conversation starts a conversation of its own."""
    async with satellite(delegating_server, "office", enrolled=True) as room:
        assert room.client.started is not None
        session_id = room.client.started.session_id
        said = await room.say(speech.at_16k("My name is Zorblax."))
        await room.answer_after(said.voiced_end)
        heard = (await room.wait_for("transcript", said.voiced_end)).event.data["text"]
    assert any(heard in json.dumps(chat) for chat in prompt_tap.chats()), "the room's turn"
    await wy.handle(delegating_server.uri, "What is my name?", session_id)
    sent = prompt_tap.chats()[-1]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["What is my name?"], sent
    assert heard not in json.dumps(sent), sent
