"""A timer ringing on a real `locara-satellite` process (WAV files as microphone and
speaker) against a real server: the satellite's own timer sound, the words, and "stop"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from locara_satellite.config import load_satellite_config
from locara_satellite.sounds import TIMER_SOUND
from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.bench.utterances import write_wav
from locara_wyoming.config import ConfigError

from .support.control_client import control, token_of
from .support.enrolment import enrol
from .support.satellite_process import SatelliteProcess, pair, read_wav, spoken, words_in
from .support.servers import TEST_CONFIG
from .support.speech import Speech

pytestmark = pytest.mark.models

CONFIG = TEST_CONFIG + "\n[timers]\nring_interval_s = 4\nring_limit_s = 60\n"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("satellite-timers"), CONFIG) as process:
        yield process


def loudest_hz(audio: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(audio))) * rate / len(audio))


async def test_a_finished_timer_plays_its_sound_says_which_and_stops_on_stop(
    server: ServerProcess, speech: Speech, whisper: WhisperModel, tmp_path: Path
) -> None:
    code = await enrol(server, "pantry")
    assert (await pair(code, tmp_path / "satellite"))[0] == 0
    # Nobody says the wake word: the ringing opens the microphone for "stop".
    mic = write_wav(tmp_path / "mic.wav", spoken(speech, 5.0, "Stop.", 16.0))
    out = tmp_path / "out.wav"
    run = await SatelliteProcess(
        "--server", server.uri, "--data-dir", str(tmp_path / "satellite"),
        "--mic-file", str(mic), "--snd-file", str(out),
    ).start()  # fmt: skip
    await run.wait_for("State: idle")
    timer = {"id": "bread", "seconds_left": 0, "start_minutes": 5, "name": "bread"}
    async with control(server.host, server.port, token_of(server)) as hub:
        done = await hub.request("locara-timer", satellite="pantry", change="finished", timer=timer)
    assert done.type == "locara-timer-done" and done.data["delivered"], done.data
    await run.wait_for("Timer bread finished: ringing")
    await run.wait_for("Conversation opened: a timer rings")
    await run.wait_for("Timer bread stopped ringing", timeout_s=60)
    assert await run.finish() == 0, run.output()
    rounds = len(run.lines("Timer bread finished: ringing"))

    # The satellite's own sound first (its first beep, 880 Hz), then the words.
    rate, audio = read_wav(out)
    first = int(np.flatnonzero(np.abs(audio) > 0.05)[0])
    assert abs(loudest_hz(audio[first : first + rate // 10], rate) - 880) < 20
    assert {"bread", "timer", "done"} <= set(words_in(out, whisper))
    # Rounds are ~6.5 s apart (sound, words, 4 s): unstopped, a third would ring by 18 s.
    assert rounds <= 2, run.output()
    assert len(audio) / rate > 21
    assert not np.any(np.abs(audio[rate * 17 :]) > 0.05), "it rang on after stop"


def test_the_timer_sound_ships_with_the_satellite_and_may_be_replaced(tmp_path: Path) -> None:
    assert load_satellite_config(None, {}).timers.sound == TIMER_SOUND
    rate, audio = read_wav(TIMER_SOUND)
    assert 1.0 < len(audio) / rate < 2.0 and 0.2 < np.max(np.abs(audio)) < 0.9
    own = write_wav(tmp_path / "bell.wav", 0.3 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440))
    config = load_satellite_config(None, {"timers.sound": own})
    assert config.timers.sound == own
    with pytest.raises(ConfigError, match=r"timers\.sound.*no such WAV file"):
        load_satellite_config(None, {"timers.sound": tmp_path / "none.wav"})
