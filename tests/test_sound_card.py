"""The sounddevice path for real: PortAudio → ALSA → a PulseAudio server with null sinks.

A "user" sink stands for the person in the room (its monitor is the satellite's
microphone) and a "room" sink for the loudspeaker (recorded from its monitor).
Skips where no PulseAudio can run (`scripts/setup.sh test` installs it as root).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.bench.utterances import write_wav

from .support.satellite_process import SatelliteProcess, read_wav
from .support.speech import Speech

pytestmark = pytest.mark.models

NEEDED = ("pulseaudio", "pactl", "paplay", "parecord")


@pytest.fixture
def pulse_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"no PulseAudio here ({', '.join(missing)} missing): apt-get install pulseaudio"
        )
    runtime = tmp_path / "pulse"
    runtime.mkdir()
    env = {
        "XDG_RUNTIME_DIR": str(runtime),
        "PULSE_SERVER": f"unix:{runtime}/pulse/native",
        "HOME": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n",
         "--load=module-native-protocol-unix", "--load=module-null-sink sink_name=room",
         "--load=module-null-sink sink_name=user"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(50):
            if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
                break
            if daemon.poll() is not None:
                pytest.skip(f"PulseAudio cannot run here: {daemon.stderr.read()[-500:]}")  # type: ignore[union-attr]
            subprocess.run(["sleep", "0.1"])
        yield env
    finally:
        daemon.terminate()
        daemon.wait(10)


async def test_a_conversation_through_a_sound_card(
    pulse_room: dict[str, str], server: ServerProcess, speech: Speech, whisper: WhisperModel,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    said = np.concatenate([speech.at_16k("Okay Nabu."), np.zeros(6400, np.float32),
                           speech.at_16k("What is the weather like today?")])  # fmt: skip
    question = write_wav(tmp_path / "question.wav", said)
    heard = tmp_path / "room.wav"
    recorder = await asyncio.create_subprocess_exec(
        "parecord", "--device=room.monitor", "--rate=16000", "--channels=1", "--format=s16le",
        "--file-format=wav", str(heard),
    )  # fmt: skip
    monkeypatch.setenv("PULSE_SOURCE", "user.monitor")  # the person in the room
    monkeypatch.setenv("PULSE_SINK", "room")  # the loudspeaker
    try:
        run = await SatelliteProcess("--server", server.uri, "--name", "hall").start()
        try:
            devices = await SatelliteProcess("--list-devices").start()
            assert await devices.finish() == 0 and "pulse" in devices.output()
            await run.wait_for("State: idle")
            player = await asyncio.create_subprocess_exec("paplay", "--device=user", str(question))
            assert await player.wait() == 0
            await run.wait_for("State: speaking", timeout_s=60)
            await run.wait_for("State: listening", count=2, timeout_s=90)
        finally:
            assert await run.stop() == 0, run.output()
    finally:
        recorder.terminate()
        await recorder.wait()
    _, audio = read_wav(heard)
    segments, _ = whisper.transcribe(audio)
    words = re.findall(r"[a-z']+", " ".join(s.text for s in segments).lower())
    assert len(words) >= 3, (words, run.output())
