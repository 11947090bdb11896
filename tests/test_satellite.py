"""The satellite as a room runs it: its own process, from the satellite-only environment,
with WAV files as microphone and speaker, against a real server over TCP."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faster_whisper import WhisperModel

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.bench.utterances import write_wav

from .support.control_client import control, token_of
from .support.enrolment import enrol
from .support.satellite_process import (
    SATELLITE_PYTHON,
    SatelliteProcess,
    pair,
    read_wav,
    silence,
    spoken,
    words_in,
)
from .support.servers import TEST_CONFIG
from .support.speech import Speech

pytestmark = pytest.mark.models


async def session_record(server: ServerProcess, session_id: str) -> dict[str, Any]:
    """A session as Home Assistant sees it (a stranger's `locara-status` names none)."""
    async with control(server.host, server.port, token_of(server)) as hub:
        records = [r for r in hub.state["satellites"] if r["session_id"] == session_id]
    assert len(records) == 1, hub.state["satellites"]
    return records[0]


def satellite(server: ServerProcess, mic: Path, out: Path, *more: str) -> SatelliteProcess:
    return SatelliteProcess(
        "--server", server.uri, "--name", "hall", "--mic-file", str(mic), "--snd-file", str(out),
        *more,
    )  # fmt: skip


def test_the_satellite_environment_has_no_model_runtime() -> None:
    check = subprocess.run(
        [str(SATELLITE_PYTHON), "-c",
         "import sys, importlib.util, locara_satellite.cli, locara_satellite.app\n"
         "heavy = ['torch', 'llama_cpp', 'ctranslate2', 'faster_whisper', 'piper', 'onnxruntime']\n"
         "print([m for m in heavy if importlib.util.find_spec(m) or m in sys.modules])"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "[]"


async def test_a_conversation_opened_by_the_wake_word(
    server: ServerProcess, speech: Speech, whisper: WhisperModel, tmp_path: Path
) -> None:
    mic = write_wav(
        tmp_path / "mic.wav",
        spoken(speech, 1.0, "Okay Nabu.", 0.4, "What is the weather like today?", 2.0),
    )
    out = tmp_path / "out.wav"
    t = np.arange(int(0.2 * 44100)) / 44100
    chime = write_wav(tmp_path / "chime.wav", 0.3 * np.sin(2 * np.pi * 880 * t), rate=44100)
    run = await satellite(server, mic, out, "--wake-sound", str(chime)).start()
    assert await run.finish() == 0, run.output()
    assert run.lines("Conversation opened: wake word okay_nabu"), run.output()
    rate, audio = read_wav(out)
    first = int(np.flatnonzero(np.abs(audio) > 0.05)[0])
    assert 1.5 < first / rate < 3.5  # as the wake word ends, before any reply
    sound = audio[first : first + rate // 10]
    assert abs(np.argmax(np.abs(np.fft.rfft(sound))) * rate / len(sound) - 880) < 20
    states = [line.rsplit("State: ", 1)[1] for line in run.lines("State: ")]
    assert states[:5] == ["connecting", "idle", "listening", "thinking", "speaking"], states
    words = words_in(out, whisper)
    assert len(words) >= 3, words
    rate, audio = read_wav(out)
    assert len(audio) / rate >= 4.0  # the whole session, silences included, in real time


async def test_speech_without_the_wake_word_is_not_sent(
    server: ServerProcess, speech: Speech, tmp_path: Path
) -> None:
    mic = write_wav(
        tmp_path / "mic.wav", spoken(speech, 1.0, "What is the weather like today?", 2.0)
    )
    out = tmp_path / "out.wav"
    run = await satellite(server, mic, out).start()
    assert await run.finish() == 0, run.output()
    assert not run.lines("Conversation opened"), run.output()
    assert "thinking" not in run.output()
    _, audio = read_wav(out)
    assert not np.any(audio), "nothing should have been played"


async def test_talking_over_the_reply_flushes_playback(
    server: ServerProcess, speech: Speech, tmp_path: Path
) -> None:
    mic = write_wav(
        tmp_path / "mic.wav",
        spoken(speech, 1.0, "Okay Nabu.", 0.4, "Tell me a long story about a dragon.", 4.0,
               "Stop, please.", 3.0),
    )  # fmt: skip
    out = tmp_path / "out.wav"
    run = await SatelliteProcess(
        "--server", server.uri, "--name", "story-room", "--mic-file", str(mic),
        "--snd-file", str(out),
    ).start()  # fmt: skip
    assert await run.finish() == 0, run.output()
    assert run.lines("Barge-in: reply"), run.output()


async def test_the_satellite_reconnects_and_resumes_after_a_server_restart(
    tmp_path: Path,
) -> None:
    (tmp_path / "first").mkdir()
    first = ServerProcess(tmp_path / "first", TEST_CONFIG)
    await first.start()
    mic = write_wav(tmp_path / "mic.wav", silence(120.0))
    run = await SatelliteProcess(
        "--server", first.uri, "--mic-file", str(mic), "--snd-file", str(tmp_path / "out.wav"),
        "--activation", "always",
    ).start()  # fmt: skip
    try:
        connected = await run.wait_for("Connected: session ")
        session_id = connected.rsplit(" ", 1)[1]
        await run.wait_for("State: listening")
        seen = await session_record(first, session_id)
        assert seen["name"] == socket.gethostname()  # the default name
        assert seen["state"] == "listening"
        first.kill()
        await first.stop()
        await run.wait_for("trying again")
        (tmp_path / "second").mkdir()
        second = ServerProcess(tmp_path / "second", TEST_CONFIG, uri=first.uri)
        await second.start()
        try:
            again = await run.wait_for("Connected: session ", count=2, timeout_s=90)
            assert again.rsplit(" ", 1)[1] == session_id  # the same session, resumed
            await run.wait_for("State: listening", count=2)
        finally:
            await second.stop()
    finally:
        assert await run.stop() == 0, run.output()
    assert any("Stopped" in line for line in run.log)
    # Not paired: it says so once, not at every reconnection.
    assert len(run.lines("Not enrolled")) == 1, run.output()


async def test_push_to_talk_opens_on_a_signal(
    server: ServerProcess, speech: Speech, tmp_path: Path
) -> None:
    mic = write_wav(
        tmp_path / "mic.wav", spoken(speech, 4.0, "What is the weather like today?", 2.0)
    )
    run = await satellite(server, mic, tmp_path / "out.wav", "--activation", "push").start()
    await run.wait_for("State: idle")
    assert run.process is not None
    run.process.send_signal(signal.SIGUSR1)
    await run.wait_for("Conversation opened: push-to-talk")
    assert await run.finish() == 0, run.output()
    assert run.lines("State: speaking"), run.output()


async def test_an_announcement_plays_and_opens_the_conversation(
    server: ServerProcess, whisper: WhisperModel, tmp_path: Path
) -> None:
    """Home Assistant's `locara.start_conversation`: spoken, then listening without a
    wake word. Only to an enrolled satellite: this one is paired."""
    code = await enrol(server, "laundry")
    assert (await pair(code, tmp_path / "satellite"))[0] == 0
    out = tmp_path / "out.wav"
    run = await SatelliteProcess(
        "--server", server.uri, "--data-dir", str(tmp_path / "satellite"),
        "--mic-file", str(write_wav(tmp_path / "mic.wav", silence(12.0))), "--snd-file", str(out),
    ).start()  # fmt: skip
    await run.wait_for("State: idle")
    async with control(server.host, server.port, token_of(server)) as hub:
        done = await hub.request(
            "locara-announce", text="The washing machine has finished.", satellite="laundry",
            listen=True,
        )  # fmt: skip
    assert done.type == "locara-announce-done", done.data
    await run.wait_for("Conversation opened: the server asked")
    assert await run.finish() == 0, run.output()
    assert {"washing", "machine"} <= set(words_in(out, whisper))


async def test_discovery_finds_the_server_by_zeroconf(
    server: ServerProcess, zeroconf_name: str, tmp_path: Path
) -> None:
    run = await SatelliteProcess(
        "--server-name", zeroconf_name, "--discovery-interface", "127.0.0.1",
        "--mic-file", str(write_wav(tmp_path / "mic.wav", silence(1.0))),
        "--snd-file", str(tmp_path / "out.wav"), "--activation", "always",
    ).start()  # fmt: skip
    assert await run.finish() == 0, run.output()
    assert run.lines(f"Found {zeroconf_name} at {server.uri}"), run.output()
    assert run.lines("Connected: session"), run.output()


async def test_bad_settings_are_named_and_nothing_starts(tmp_path: Path) -> None:
    (tmp_path / "satellite.toml").write_text('[activation]\nwake_word = "hey_siri"\n')
    run = await SatelliteProcess(
        "--config", str(tmp_path / "satellite.toml"), "--mic-file", str(tmp_path / "none.wav"),
        "--snd-file", str(tmp_path / "out.wav"),
    ).start()  # fmt: skip
    assert await run.finish() == 2
    assert "activation.wake_word = 'hey_siri'" in run.output()
    assert "okay_nabu" in run.output()
    assert "Traceback" not in run.output()


async def test_programs_as_microphone_and_speaker(
    server: ServerProcess, speech: Speech, whisper: WhisperModel, tmp_path: Path
) -> None:
    """`--mic-command` / `--snd-command` as arecord and aplay would be used, with cat;
    only speech goes out (`--no-send-silence`) and the turn still ends."""
    said = spoken(speech, 0.5, "Okay Nabu.", 0.4, "What is the weather like today?", 2.0)
    raw_in = tmp_path / "mic.raw"
    raw_in.write_bytes((said * 32767).astype("<i2").tobytes())
    raw_out = tmp_path / "out.raw"
    run = await SatelliteProcess(
        "--server", server.uri, "--name", "hall",
        "--mic-command", f"cat {raw_in}",
        "--snd-command", f"sh -c 'cat > {raw_out}'", "--snd-command-rate", "16000",
        "--snd-command-channels", "2", "--no-send-silence",
    ).start()  # fmt: skip
    assert await run.finish() == 0, run.output()
    stereo = np.frombuffer(raw_out.read_bytes(), "<i2").reshape(-1, 2).astype(np.float32) / 32768
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    segments, _ = whisper.transcribe(stereo[:, 0].copy())
    words = re.findall(r"[a-z']+", " ".join(s.text for s in segments).lower())
    assert len(words) >= 3, words
