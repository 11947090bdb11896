"""`locara-wyoming bench voice` end to end (a short run against a real server and the stock
chain), `bench soak` in short, and the benches' checks of their options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from locara_wyoming.bench.soak import slope_per_hour


def bench(*args: str, command: str = "voice") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locara_wyoming", "bench", command, *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_bad_options_are_named_and_nothing_runs(tmp_path: Path) -> None:
    result = bench("--turns", "0", "--echo-gain", "3", "--utterances", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "--turns must be at least 1" in result.stderr
    assert "--echo-gain must be between 0 and 1" in result.stderr
    assert "not a folder" in result.stderr
    assert "Starting the server" not in result.stderr


def test_a_short_voice_bench_reports_every_number(tmp_path: Path) -> None:
    out = tmp_path / "voice.json"
    result = bench(
        "--turns", "2", "--bargeins", "1", "--sessions", "2", "--turns-per-session", "1",
        "--idle-seconds", "1", "--compare-stock", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert json.loads(result.stdout) == results
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


def test_the_satellite_bench_names_a_bad_option() -> None:
    result = bench("--rounds", "0", command="satellite")
    assert result.returncode == 2
    assert "--rounds must be at least 1" in result.stderr
    assert "Starting the server" not in result.stderr


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


def test_the_stalled_bench_names_a_bad_option() -> None:
    result = bench("--rounds", "0", command="stalled")
    assert result.returncode == 2
    assert "--rounds must be at least 1" in result.stderr
    assert "Starting the server" not in result.stderr


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
