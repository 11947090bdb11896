"""`locara-wyoming bench voice` end to end (a short run against a real server and the stock
chain), its paused set and how it counts early replies, missed ends and timeouts,
`bench soak` in short, and the benches' checks of their options."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from locara_wyoming.bench import utterances
from locara_wyoming.bench.options import VoiceBenchOptions
from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.bench.soak import slope_per_hour
from locara_wyoming.bench.turns import converse
from locara_wyoming.bench.utterances import Question, Style
from locara_wyoming.client.simulated import VOICED_LEVEL

if TYPE_CHECKING:
    from piper import PiperVoice


def bench(*args: str, command: str = "voice") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locara_wyoming", "bench", command, *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.models
def test_bad_options_are_named_and_nothing_runs(tmp_path: Path) -> None:
    result = bench(
        "--turns", "0", "--echo-gain", "3", "--utterances", str(tmp_path / "none"),
        "--paused-turns", "-1", "--answer-timeout", "0",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--turns must be at least 1" in result.stderr
    assert "--paused-turns must be 0 or more" in result.stderr
    assert "--answer-timeout must be more than 0" in result.stderr
    assert "--echo-gain must be between 0 and 1" in result.stderr
    assert "not a folder" in result.stderr
    assert "Starting the server" not in result.stderr


@pytest.mark.models
def test_a_short_voice_bench_reports_every_number(tmp_path: Path) -> None:
    out = tmp_path / "voice.json"
    result = bench(
        "--turns", "2", "--bargeins", "1", "--sessions", "2", "--turns-per-session", "1",
        "--idle-seconds", "1", "--paused-turns", "1", "--compare-stock", "--json", str(out),
        # How soon an answer comes is the bench's measurement; that it comes at all is
        # what this test checks, so a machine loaded by other work gets two minutes.
        "--answer-timeout", "120",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert json.loads(result.stdout) == results
    clean, paused = results["sets"]["clean"], results["sets"]["paused"]
    assert clean["asked"] == 2 and clean["v2v_ms"] == results["v2v_ms"]
    findings = results["details"]["paused_set"]["findings"]
    assert paused["asked"] == 1 and paused["timeouts"] == 0, findings
    # Whether this server answers the first paused utterance early is a measurement
    # (docs/benchmarks.md); that one turn is counted, and answered, is not.
    assert paused["early_replies"] >= 0 and paused["missed_ends"] in (0, 1)
    answered = results["details"]["paused_set"]
    assert paused["turns"] + answered["silent_replies"] == 1
    if paused["turns"]:
        assert 0 < paused["v2v_ms"]["p50"] < 30_000
    assert len(answered["findings"]) == (paused["early_replies"] > 0 or paused["missed_ends"] > 0)
    assert results["timeouts"] == 0
    # How many replies cut themselves off is a measurement (0 in the 40-turn run in
    # docs/benchmarks.md), not something two turns on a loaded machine can vouch for.
    assert results["turns"] == 4 and 0 <= results["false_bargein"] <= results["turns"]
    details = results["details"]
    assert details["bargein"]["missed"] == 0
    assert 0 < results["bargein_ms"]["p50"] < 2000
    assert 0 < results["v2v_ms"]["p50"] <= results["v2v_ms"]["p90"] < 10_000
    assert set(results["stages_ms"]) == {
        "silence_wait_ms", "stt_ms", "llm_first_clause_ms", "tts_first_audio_ms",
        "transport_and_playout_ms",
    }  # fmt: skip
    assert details["stock"]["turns"] == 10
    assert details["stock"]["stages_ms_p50"]["stt_ms"] > 0
    assert results["stock_v2v_ms"]["p50"] > 700
    assert results["speedup_vs_stock"] > 0
    assert results["concurrent_v2v_ms"]["p50"] > 0
    assert "idle_satellite_pct_of_core" in results
    assert results["rss_mb"]["after_bench"] > 100


@pytest.mark.models
def test_a_turn_without_an_answer_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    # Two seconds of silence as the question: nothing for the server to answer.
    folder = tmp_path / "utterances"
    folder.mkdir()
    utterances.write_wav(folder / "silence.wav", np.zeros(32_000, np.float32))
    out = tmp_path / "voice.json"
    result = bench(
        "--utterances", str(folder), "--turns", "1", "--paused-turns", "0", "--bargeins", "0",
        "--sessions", "1", "--turns-per-session", "1", "--idle-seconds", "0.5",
        "--answer-timeout", "2", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    results = json.loads(out.read_text())
    assert list(results["sets"]) == ["utterances"]  # no paused set: --paused-turns 0
    clean = results["sets"]["utterances"]
    assert clean["asked"] == 1 and clean["turns"] == 0 and clean["v2v_ms"] == {}
    assert clean["timeouts"] == 1 and clean["timed_out"] == ["silence.wav"]
    assert clean["missed_ends"] == 1 and clean["early_replies"] == 0
    assert results["timeouts"] == 2  # the single room's turn and the concurrent room's
    assert results["concurrent_p50_over_single_p50"] is None
    (finding,) = results["details"]["single_session"]["findings"]
    assert finding["utterance"] == "silence.wav" and finding["answer_ms"] is None
    assert finding["timed_out"] and finding["heard"] == []


@pytest.fixture(scope="module")
def paused_set(piper_voice: PiperVoice) -> list[Question]:
    return utterances.paused_set(piper_voice)


def voiced_length(samples: np.ndarray) -> int:
    loud = np.flatnonzero(np.abs(samples) > VOICED_LEVEL)
    return int(loud[-1] - loud[0])


def spectrum(samples: np.ndarray, size: int = 1024) -> np.ndarray:
    """The log power spectrum averaged over the loud frames."""
    window = np.hanning(size)
    frames = [
        samples[start : start + size] * window
        for start in range(0, len(samples) - size, size // 2)
        if np.sqrt(np.mean(samples[start : start + size] ** 2)) > 0.03
    ]
    power = np.mean([np.abs(np.fft.rfft(f)) ** 2 for f in frames], axis=0)
    return np.asarray(np.log(power + 1e-12), dtype=np.float64)


def spectrum_scale(reference: np.ndarray, other: np.ndarray) -> float:
    """By what factor `other`'s spectrum (pitch and formants, 80 Hz-4 kHz) is stretched
    against `reference`'s: the factor that lines the two up best."""
    frequencies = np.fft.rfftfreq(1024, 1 / utterances.MIC_RATE)
    grid = np.geomspace(80, 4000, 400)
    base = np.interp(grid, frequencies, spectrum(reference))
    theirs = spectrum(other)
    return float(
        max(
            np.geomspace(0.7, 1.4, 141),
            key=lambda f: np.corrcoef(base, np.interp(grid * f, frequencies, theirs))[0, 1],
        )
    )


@pytest.mark.models
def test_the_paused_set_pauses_where_it_says(paused_set: list[Question]) -> None:
    assert len(paused_set) == VoiceBenchOptions().paused_turns >= 20
    for spoken, phrases in zip(paused_set, utterances.PAUSED_PHRASES, strict=True):
        assert spoken.text == " ".join(phrases)
        assert len(spoken.voiced) == len(phrases) >= 2, spoken.text
        loud = np.flatnonzero(np.abs(spoken.samples) > VOICED_LEVEL)
        assert spoken.voiced[0][0] == loud[0]
        assert spoken.last_voiced == loud[-1]  # the real end is the audio's last voiced sample
        for (_, stop), (start, _) in itertools.pairwise(spoken.voiced):
            assert 300 <= 1000 * (start - stop) / utterances.MIC_RATE <= 900, spoken.text
            assert np.all(np.abs(spoken.samples[stop:start]) <= VOICED_LEVEL), spoken.text
        for start, stop in spoken.voiced:
            assert abs(spoken.samples[start]) > VOICED_LEVEL
            assert abs(spoken.samples[stop - 1]) > VOICED_LEVEL
    words = [phrase for phrases in utterances.PAUSED_PHRASES for phrase in phrases]
    assert {"um,", "uh,"} <= {phrase.lower() for phrase in words}
    styles = [utterances.paused_style(index) for index in range(len(paused_set))]
    assert [spoken.voice for spoken in paused_set] == [style.name for style in styles]
    assert (
        {style.voice for style in styles}
        == set(utterances.VOICES)
        == {"joe", "joe-high", "joe-low"}
    )
    assert {style.pace for style in styles} == set(utterances.PACES) == {"normal", "slow", "fast"}


@pytest.mark.models
def test_the_paused_voices_differ_in_pitch_and_pace(piper_voice: PiperVoice) -> None:
    text = "What is the weather like today?"

    def said(voice: str, pace: str = "normal") -> np.ndarray:
        style = Style(voice, utterances.VOICES[voice], pace)
        return utterances.speak_styled(piper_voice, text, style)

    joe = said("joe")
    for voice, factor in utterances.VOICES.items():
        normal = said(voice)
        # Pitch and formants move by the voice's factor, whatever the pace...
        for pace in utterances.PACES:
            spoken = said(voice, pace)
            assert spectrum_scale(joe, spoken) == pytest.approx(factor, abs=0.02), (voice, pace)
        # ...the length little (Piper rounds sounds up to whole frames), the pace sets it.
        assert voiced_length(normal) / voiced_length(joe) == pytest.approx(1, abs=0.15), voice
        assert 1.12 < voiced_length(said(voice, "slow")) / voiced_length(normal) < 1.35, voice
        assert 0.7 < voiced_length(said(voice, "fast")) / voiced_length(normal) < 0.9, voice
    # The same audio at every run: a benchmark hears the same utterances each time.
    assert np.array_equal(said("joe-high", "slow"), said("joe-high", "slow"))


@pytest.mark.models
def test_a_recordings_real_end_is_its_last_voiced_sample(
    tmp_path: Path, piper_voice: PiperVoice
) -> None:
    (speech,) = utterances.synthesize(["Turn on the kitchen light."], piper_voice)
    loud = np.flatnonzero(np.abs(speech) > VOICED_LEVEL)
    noise = np.random.default_rng(7).normal(0, 0.004, 3 * utterances.MIC_RATE + len(speech))
    recording = noise.astype(np.float32)
    recording[utterances.MIC_RATE : utterances.MIC_RATE + len(speech)] += speech
    utterances.write_wav(tmp_path / "kitchen.wav", recording)
    utterances.write_wav(tmp_path / "noise.wav", noise.astype(np.float32))
    kitchen, only_noise = utterances.load_wavs(tmp_path)
    assert kitchen.text == "kitchen.wav" and only_noise.voiced == ()
    # Within 20 ms of where the speech really ends, in the noise of a room.
    true_end = utterances.MIC_RATE + loud[-1]
    assert kitchen.last_voiced is not None
    assert abs(kitchen.last_voiced - true_end) <= 0.02 * utterances.MIC_RATE


@pytest.mark.models
async def test_a_reply_heard_before_the_user_has_finished_is_counted(
    server: ServerProcess, piper_voice: PiperVoice
) -> None:
    # A whole question, then so long a pause that the server answers it however loaded
    # the machine is, then more words: the answer was heard while the user still had
    # something to say, and the turn is answered after that.
    first, second = utterances.synthesize(
        ["What is the capital of France?", "Thank you, that is all."], piper_voice
    )
    samples, spans = utterances.join_phrases([first, second], [20_000.0])
    spoken = Question("France, then thanks", samples, tuple(spans))
    tally = await converse(server, "paused-test", [spoken], VoiceBenchOptions())
    assert tally.asked == 1 and tally.early_replies == 1
    assert tally.timed_out == []
    assert len(tally.v2v_ms) + tally.silent_replies == 1
    (finding,) = tally.findings
    assert finding["utterance"] == "France, then thanks" and finding["early_replies"] == 1
    assert finding["heard"][0].startswith("What is the capital of France")
    assert tally.report()["early_replies"] == 1


@pytest.mark.models
def test_the_satellite_bench_names_a_bad_option() -> None:
    result = bench("--rounds", "0", command="satellite")
    assert result.returncode == 2
    assert "--rounds must be at least 1" in result.stderr
    assert "Starting the server" not in result.stderr


@pytest.mark.models
def test_the_soak_bench_names_bad_options() -> None:
    result = bench("--minutes", "0", "--sessions", "0", "--warm-up-minutes", "-1", command="soak")
    assert result.returncode == 2
    assert "--minutes must be more than 0" in result.stderr
    assert "--sessions must be at least 1" in result.stderr
    assert "--warm-up-minutes must not be negative" in result.stderr


def test_the_soak_reports_how_fast_idle_memory_rises() -> None:
    # The idle levels (MB) of a 30-minute soak: after the warm-up, then at each pause.
    assert slope_per_hour([0.0, 10.0, 20.0, 30.0], [488.2, 509.9, 511.7, 514.0]) == 47.5
    assert slope_per_hour([0.0, 10.0, 20.0], [509.9, 511.7, 514.0]) == 12.3
    assert slope_per_hour([0.0, 10.0, 20.0], [514.0, 511.7, 509.9]) == -12.3
    assert slope_per_hour([0.0, 10.0], [500.0, 500.0]) == 0.0


@pytest.mark.models
def test_a_short_soak_reports_turns_memory_and_descriptors(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    config = Path(__file__).parents[1] / "config" / "bench-voice.toml"
    result = bench(
        "--minutes", "0.4", "--sessions", "1", "--warm-up-minutes", "0.3", "--config", str(config),
        "--json", str(out), command="soak",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["turns"] >= 1 and results["failed_turns"] == 0, results["failures"]
    assert results["rss_mb_start"] > 100 and results["rss_mb_end"] > 100
    assert results["fds_start"] > 0 and results["fds_end"] > 0
    assert 1 <= results["warm_up_turns"] <= results["turns"]
    assert results["rss_mb_before_warm_up"] > 100
    assert results["warm_up_minutes"] == 0.3
    assert results["rss_mb_at_pauses"] == [results["rss_mb_end"]]  # 0.4 minutes: one pause
    assert len(results["minutes_at_pauses"]) == 1 and results["minutes_at_pauses"][0] >= 0.4
    rise = 60 * (results["rss_mb_end"] - results["rss_mb_start"]) / results["minutes_at_pauses"][0]
    assert results["rss_mb_per_hour"] == pytest.approx(rise, abs=0.2)
    assert {
        "bargeins", "bargein_ms", "bargeins_missed", "stories_ended_first", "reconnects",
        "rss_mb_by_minute",
    } <= set(results)  # fmt: skip
    warnings = results["server_warnings_first"]
    assert results["server_warnings"] >= len(warnings)
    assert all(" WARNING " in line or " ERROR " in line for line in warnings), warnings
    assert any("Created the control token in" in line for line in warnings), warnings


@pytest.mark.models
def test_the_stalled_bench_names_a_bad_option() -> None:
    result = bench("--rounds", "0", command="stalled")
    assert result.returncode == 2
    assert "--rounds must be at least 1" in result.stderr
    assert "Starting the server" not in result.stderr


@pytest.mark.models
def test_a_stalled_round_reports_what_each_kind_of_client_held(tmp_path: Path) -> None:
    out = tmp_path / "stalled.json"
    result = bench("--rounds", "1", "--json", str(out), command="stalled")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["rounds"] == 1
    for kind in ("speech", "session"):
        figures = results[kind]
        assert len(figures["rss_mb_held"]) == len(figures["rss_mb_after_drop"]) == 1
        assert figures["rss_mb_held_median"] == figures["rss_mb_held"][0]
        # Under asyncio's high-water mark and one event more, or a few seconds of a reply.
        assert 0 <= figures["unsent_bytes_most"] < 1_000_000, figures
    assert results["speech"]["unsent_bytes_most"] > 0  # minutes asked for: the writes waited
    assert "rss_mb" in results and "machine" in results
