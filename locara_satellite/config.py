"""The satellite's settings: a TOML file (see `config/satellite.toml`) under the flags."""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from locara_wyoming.config import read_toml, validate_config

from .sounds import TIMER_SOUND

WAKE_WORDS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
"""The microWakeWord models inside the `pymicro-wakeword` wheel."""
DEFAULT_DATA_DIR = Path("~/.local/share/locara-satellite")


class Activation(StrEnum):
    WAKE = "wake"
    """A conversation opens on the wake word."""
    PUSH = "push"
    """It opens on SIGUSR1 (push-to-talk from a button script) and closes on SIGUSR2 or idle."""
    ALWAYS = "always"
    """It is always open: for a quiet room with nothing that talks."""


class _SatelliteSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Device = int | str | None
"""A sound device by index or (part of its) name; None for the system default."""


class AudioSettings(_SatelliteSection):
    mic_device: Device = None
    speaker_device: Device = None
    volume: Annotated[float, Field(ge=0.0, le=4.0)] = 1.0
    preroll_ms: Annotated[float, Field(ge=0.0, le=2000.0)] = 100.0
    """Reply audio held back before playing starts, against network jitter."""
    echo_gate: bool = True
    """Send the speaker's own echo as silence (for devices without echo cancellation)."""


class ActivationSettings(_SatelliteSection):
    mode: Activation = Activation.WAKE
    wake_word: str = "okay_nabu"
    idle_s: Annotated[float, Field(gt=0.0)] = 8.0
    """An open conversation closes after this long with no speech from either side."""
    vad_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    send_silence: bool = True
    """False keeps silence off the network: only speech (with its edges) is sent."""
    wake_sound: Path | None = None
    done_sound: Path | None = None

    @field_validator("wake_word")
    @classmethod
    def _known_wake_word(cls, value: str) -> str:
        if value not in WAKE_WORDS:
            raise ValueError(f"unknown wake word; choose one of {', '.join(WAKE_WORDS)}")
        return value

    @field_validator("wake_sound", "done_sound")
    @classmethod
    def _sound_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such WAV file")
        return value


class TimerSettings(_SatelliteSection):
    sound: Path = TIMER_SOUND
    """Played when a timer finishes, each round until someone says "stop": by default the
    one that ships with the satellite (locara_satellite/sounds/timer.wav)."""

    @field_validator("sound")
    @classmethod
    def _sound_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError("no such WAV file")
        return value


class SatelliteConfig(_SatelliteSection):
    name: Annotated[str, Field(min_length=1)] = Field(default_factory=socket.gethostname)
    area: str | None = None
    server: str | None = None
    """`tcp://HOST:PORT`; unset finds the server by zeroconf."""
    server_name: str | None = None
    """With several Locara servers on the LAN, the one whose zeroconf name holds this."""
    data_dir: Annotated[Path, Field(validate_default=True)] = DEFAULT_DATA_DIR
    """Where the pairing with a server is kept (`credential.json`)."""
    audio: AudioSettings = AudioSettings()
    activation: ActivationSettings = ActivationSettings()
    timers: TimerSettings = TimerSettings()

    @field_validator("data_dir")
    @classmethod
    def _home_expanded(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("server")
    @classmethod
    def _tcp_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("tcp://"):
            raise ValueError("must be tcp://HOST:PORT")
        return value


def load_satellite_config(path: Path | None, overrides: dict[str, Any]) -> SatelliteConfig:
    """The file's settings with `overrides` (from flags; dotted keys for sections) on top."""
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    for key, value in overrides.items():
        section, _, field = key.rpartition(".")
        target = data.setdefault(section, {}) if section else data
        if isinstance(target, dict):  # otherwise validation names the bad section
            target[field] = value
    return validate_config(SatelliteConfig, data, str(path) if path else "flags")
