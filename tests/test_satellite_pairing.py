"""Pairing a satellite with its server as a user does it: `locara-wyoming satellites add
NAME` on the server, `locara-satellite --pair CODE` on the satellite; then the real
satellite process (from the satellite-only environment) against real servers on
loopback, one of them an impostor.

The servers here admit enrolled satellites only: no `security.open_satellites`.
"""

from __future__ import annotations

import datetime
import json
import shutil
import stat
import uuid
from pathlib import Path

import pytest
from faster_whisper import WhisperModel

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.bench.utterances import write_wav

from .support.enrolment import enrol, satellites_command
from .support.satellite_process import SatelliteProcess, pair, silence, spoken, words_in
from .support.speech import Speech

pytestmark = pytest.mark.models

ENROLLED_ONLY = """
[server]
zeroconf_interfaces = ["127.0.0.1"]

[llm]
temperature = 0.0
"""


def unstarted(workdir: Path, *extra_args: str) -> ServerProcess:
    """A server whose data directory satellites are enrolled in before it starts, as
    `locara-wyoming satellites add` may be run before `serve`."""
    workdir.mkdir()
    return ServerProcess(workdir, ENROLLED_ONLY, list(extra_args) or None, open_satellites=False)


def logged_at(line: str) -> datetime.datetime:
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


async def test_pairing_keeps_the_credential_owner_only_and_no_more(tmp_path: Path) -> None:
    server = unstarted(tmp_path / "server")
    code = await enrol(server, "hall")
    data_dir = tmp_path / "satellite" / "data"
    status, output = await pair(code, data_dir)
    assert status == 0, output
    assert f"Paired as hall with server {code.server_id}" in output, output
    assert code.key.hex() not in output and code.encode() not in output
    kept = data_dir / "credential.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert json.loads(kept.read_text()) == {
        "server_id": code.server_id,
        "fingerprint": code.fingerprint,
        "name": "hall",
        "key": code.key.hex(),
    }
    assert [path.name for path in data_dir.iterdir()] == ["credential.json"]  # no draft left

    # Enrolled again (a new key): pairing again replaces the credential.
    again = await enrol(server, "hall")
    status, output = await pair(again, data_dir)
    assert status == 0, output
    assert json.loads(kept.read_text())["key"] == again.key.hex()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    # A code for another name than the satellite's settings give: refused, nothing changed.
    porch = await enrol(server, "porch")
    status, output = await pair(porch, data_dir, "--name", "hall")
    assert status == 2, output
    assert "for a satellite named 'porch', but this one's settings name it 'hall'" in output
    assert json.loads(kept.read_text())["key"] == again.key.hex()


DAMAGED = "the pairing code is damaged or incomplete: copy it again, whole"


def damaged(code: str, damage: str) -> str:
    middle = len(code) // 2
    if damage == "cut short":
        return code[:-6]
    if damage == "one character changed":
        return code[:middle] + ("B" if code[middle] == "A" else "A") + code[middle + 1 :]
    return "hall"


@pytest.mark.parametrize(
    ("damage", "told"),
    [("cut short", DAMAGED), ("one character changed", DAMAGED),
     ("not a code", "a pairing code starts with 'locara1-'")],
)  # fmt: skip
async def test_a_damaged_pairing_code_is_refused_and_nothing_kept(
    damage: str, told: str, tmp_path: Path
) -> None:
    code = await enrol(unstarted(tmp_path / "server"), "hall")
    status, output = await pair(damaged(code.encode(), damage), tmp_path / "satellite")
    assert status == 2, output
    assert f"locara-satellite: {told}" in output and "Traceback" not in output, output
    assert not (tmp_path / "satellite").exists()


async def test_a_satellite_starts_only_with_a_pairing_it_can_use(tmp_path: Path) -> None:
    code = await enrol(unstarted(tmp_path / "server"), "hall")
    data_dir = tmp_path / "satellite"
    assert (await pair(code, data_dir))[0] == 0
    room = ("--data-dir", str(data_dir), "--snd-file", str(tmp_path / "out.wav"),
            "--mic-file", str(write_wav(tmp_path / "mic.wav", silence(1.0))))  # fmt: skip

    run = await SatelliteProcess(*room, "--name", "garage").start()
    assert await run.finish() == 2, run.output()
    assert "the pairing is for a satellite named 'hall'" in run.output()

    (data_dir / "credential.json").write_text('{"server_id": "abc", "name": "hall"}')
    run = await SatelliteProcess(*room).start()
    assert await run.finish() == 2, run.output()
    assert "credential.json is damaged: pair again (`locara-satellite --pair CODE`)" in run.output()
    assert "Traceback" not in run.output()


async def test_a_paired_satellite_finds_its_own_server_and_is_answered(
    server: ServerProcess,
    zeroconf_name: str,
    speech: Speech,
    whisper: WhisperModel,
    tmp_path: Path,
) -> None:
    """A new user's minute: enrol, pair, start. Discovery passes over another Locara
    server on the network (the suite's shared one, which would take any satellite) and
    waits for the one it is paired with, which proves itself; the question is answered."""
    own_name = f"locara-paired-{uuid.uuid4().hex[:8]}"
    own = unstarted(tmp_path / "server", "--zeroconf", own_name)
    code = await enrol(own, "hall")
    assert (await pair(code, tmp_path / "satellite"))[0] == 0
    mic = write_wav(
        tmp_path / "mic.wav",
        spoken(speech, 1.0, "Okay Nabu.", 0.4, "What is the weather like today?", 2.0),
    )
    out = tmp_path / "out.wav"
    run = await SatelliteProcess(
        "--data-dir", str(tmp_path / "satellite"), "--discovery-interface", "127.0.0.1",
        "--mic-file", str(mic), "--snd-file", str(out),
    ).start()  # fmt: skip
    try:
        await run.wait_for(f"Passing over {zeroconf_name}: not the server this satellite is paired")
        async with own:
            assert await run.finish() == 0, run.output()
    finally:
        await run.stop()
    assert run.lines(f"Paired as hall with server {code.server_id}"), run.output()
    assert not run.lines("Not enrolled")
    assert run.lines(f"Found {own_name} at {own.uri}"), run.output()
    assert not run.lines(f"Found {zeroconf_name}")
    assert run.lines("Conversation opened: wake word okay_nabu"), run.output()
    assert run.lines("State: speaking"), run.output()
    assert len(words_in(out, whisper)) >= 3
    assert own.log.matching("proved itself as satellite hall"), "\n".join(own.log)
    assert own.log.matching(": hall (None) on "), "\n".join(own.log)  # its session


async def test_a_server_with_another_certificate_gets_nothing(tmp_path: Path) -> None:
    """An impostor takes the paired server's place on the network: it advertises the
    server's id by zeroconf, and even holds the satellite's key (a copy of the server's
    data directory, all but its TLS key and certificate). The satellite finds it, checks
    its certificate, and goes no further: no proof, no session, the microphone never
    opened; it says why, and tries again later."""
    genuine = unstarted(tmp_path / "genuine")
    code = await enrol(genuine, "hall")
    assert (await pair(code, tmp_path / "satellite"))[0] == 0
    rogue_name = f"locara-rogue-{uuid.uuid4().hex[:8]}"
    rogue = unstarted(tmp_path / "rogue", "--zeroconf", rogue_name)
    (rogue.workdir / "data").mkdir()
    for kept in ("server_id", "token", "satellites.json"):
        shutil.copy(genuine.workdir / "data" / kept, rogue.workdir / "data" / kept)
    microphone_opened = tmp_path / "microphone-opened"
    async with rogue:
        run = await SatelliteProcess(
            "--data-dir", str(tmp_path / "satellite"), "--discovery-interface", "127.0.0.1",
            "--activation", "always", "--snd-file", str(tmp_path / "out.wav"),
            "--mic-command", f"sh -c 'touch {microphone_opened}; exec cat /dev/zero'",
        ).start()  # fmt: skip
        try:
            refusals = [
                await run.wait_for("did not prove itself to be the server", count)
                for count in (1, 2, 3)
            ]
        finally:
            assert await run.stop() == 0, run.output()
    assert run.lines(f"Found {rogue_name}"), run.output()  # it advertised the paired id
    for refusal, wait_s in zip(refusals, (1, 2, 4), strict=True):
        assert "the server's certificate changed" in refusal, refusal
        assert "nothing was sent to it" in refusal and "needs a new pairing" in refusal
        assert f"trying again in {wait_s} s" in refusal, refusal
    assert not run.lines("Connected: session") and not run.lines("Conversation opened")
    assert not microphone_opened.exists()
    assert not rogue.log.matching("proved itself"), "\n".join(rogue.log)
    assert not rogue.log.matching("Session "), "\n".join(rogue.log)


async def test_a_removed_satellite_is_told_to_pair_again_and_backs_off(tmp_path: Path) -> None:
    server = unstarted(tmp_path / "server")
    code = await enrol(server, "porch")
    assert (await pair(code, tmp_path / "satellite"))[0] == 0
    async with server:
        run = await SatelliteProcess(
            "--server", server.uri, "--data-dir", str(tmp_path / "satellite"),
            "--activation", "always", "--snd-file", str(tmp_path / "out.wav"),
            "--mic-file", str(write_wav(tmp_path / "mic.wav", silence(120.0))),
        ).start()  # fmt: skip
        try:
            await run.wait_for("Connected: session")
            status, output = await satellites_command(server, "remove", "porch")
            assert status == 0, output
            told = [await run.wait_for("no longer enrolled", count) for count in (1, 2)]
        finally:
            assert await run.stop() == 0, run.output()
    for line, wait_s in zip(told, (2, 4), strict=True):
        assert "this satellite is no longer enrolled on the server: pair it again" in line
        assert "`locara-wyoming satellites add porch` there" in line, line
        assert f"trying again in {wait_s} s" in line, line
    assert (logged_at(told[1]) - logged_at(told[0])).total_seconds() >= 1.9
    assert len(run.lines("Connected: session")) == 1, run.output()
    assert 2 <= len(server.log.matching("'porch' is not enrolled")) <= 3, "\n".join(server.log)
