"""Configuration: defaults work, bad files fail at start naming the key and value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from locara_satellite.config import Activation, load_satellite_config
from locara_wyoming.config import ConfigError, load_config
from locara_wyoming.embedded_models import EmbeddedModel, ModelMissingError

from .support.servers import serve_expecting_failure

CONFIG_DIR = Path(__file__).parent.parent / "config"


def test_no_file_gives_embedded_defaults() -> None:
    config = load_config(None)
    assert config.stt.model == "embedded" and config.tts.voices == ["embedded"]
    assert config.llm.model == "embedded" and config.llm.url is None
    assert config.persona().name == "locara"


SERVER_EXAMPLES = sorted(set(CONFIG_DIR.glob("*.toml")) - {CONFIG_DIR / "satellite.toml"})


@pytest.mark.parametrize("example", SERVER_EXAMPLES, ids=lambda p: p.name)
def test_shipped_examples_are_valid(example: Path) -> None:
    load_config(example)


def test_the_satellite_example_is_valid_and_flags_win() -> None:
    example = CONFIG_DIR / "satellite.toml"
    config = load_satellite_config(example, {})
    assert config.name == "kitchen" and config.activation.mode is Activation.WAKE
    flagged = load_satellite_config(example, {"area": "Hall", "activation.idle_s": 3.0})
    assert flagged.area == "Hall" and flagged.activation.idle_s == 3.0
    assert flagged.activation.wake_word == "okay_nabu"  # the file's, untouched


BAD_FILES = [
    ("[stt]\nbeam_size = 0\n", "stt.beam_size = 0"),
    ("[stt]\nbeem_size = 2\n", "stt.beem_size: unknown key"),
    ("[llm]\ntemperature = 'hot'\n", "llm.temperature = 'hot'"),
    ("[llm]\nurl = 'ftp://x'\nmodel = 'm'\n", "llm.url must start with http"),
    ("[llm]\nurl = 'http://localhost:11434/v1'\n", "llm.model must name the endpoint's model"),
    ("[tts]\nuri = 'http://x'\n", "tts.uri must start with tcp:// or unix://"),
    ("[stt]\nmodel = 'base.en'\nuri = 'tcp://gpu:10300'\n", "either stt.model or stt.uri"),
    ("default_persona = 'bob'\n", "default_persona = 'bob' is not one of the personas"),
    ("[[personas]]\nname = 'a'\n[[personas]]\nname = 'a'\n", "duplicate name 'a'"),
    ("[limits]\nmax_connections = -3\n", "limits.max_connections = -3"),
    (
        "[limits]\nmax_connections = 8\n",  # the default reserve of 8 leaves strangers none
        "limits.reserved_connections = 8: must be less than max_connections (8)",
    ),
    ("[limits]\nreserved_connections = -1\n", "limits.reserved_connections = -1"),
    ("[server\nuri = 1\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_file_names_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.models
def test_serve_with_bad_config_exits_at_start_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[tts]\nconcurrency = 'many'\n")
    result = subprocess.run(
        [sys.executable, "-m", "locara_wyoming", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "tts.concurrency = 'many'" in result.stderr


@pytest.mark.models
def test_serve_with_unusable_uri_exits_with_the_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "locara_wyoming", "serve", "--uri", "http://host:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--uri 'http://host:1'" in result.stderr


def test_missing_model_package_names_what_to_install() -> None:
    missing = EmbeddedModel(
        name="example",
        package="locara_no_such_package",
        distribution="locara-no-such-package",
        relative_path="model.bin",
        source_url="",
        author="",
    )
    with pytest.raises(ModelMissingError, match="pip install locara-no-such-package"):
        missing.path()


@pytest.mark.models
def test_voice_file_that_does_not_exist_stops_start(tmp_path: Path) -> None:
    result = serve_expecting_failure(tmp_path, "[tts]\nvoices = ['/nowhere/en_US-x.onnx']\n")
    assert result.returncode == 3
    assert "Piper voice '/nowhere/en_US-x.onnx' does not exist" in result.stderr


@pytest.mark.models
def test_persona_voice_that_does_not_exist_stops_start(tmp_path: Path) -> None:
    result = serve_expecting_failure(
        tmp_path, "[[personas]]\nname = 'kid'\nvoice = 'en_GB-nobody'\n"
    )
    assert result.returncode == 3
    assert "persona 'kid': voice: no voice named 'en_GB-nobody'" in result.stderr


@pytest.mark.models
def test_unknown_backend_prefix_stops_start(tmp_path: Path) -> None:
    config = "[[rooms]]\narea = 'Hall'\nbackend = 'gpt-voice-1'\n"
    result = serve_expecting_failure(tmp_path, config)
    assert result.returncode == 2
    assert "rooms[0].backend = 'gpt-voice-1': backend 'gpt-voice-1' matches no known prefix" in (
        result.stderr
    )
