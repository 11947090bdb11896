"""The base install (what a satellite needs) pulls in none of the heavy model runtimes."""

from __future__ import annotations

import importlib.metadata
import re

HEAVY = {"torch", "llama-cpp-python", "ctranslate2", "faster-whisper", "piper-tts", "moshi"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_base_dependencies_are_light() -> None:
    requirements = importlib.metadata.requires("locara-wyoming") or []
    base = {_name(r) for r in requirements if "extra ==" not in r}
    assert base, "no base requirements found"
    assert not base & HEAVY, base & HEAVY
    server = {_name(r) for r in requirements if 'extra == "server"' in r}
    assert {"faster-whisper", "piper-tts", "llama-cpp-python"} <= server


def test_console_script_is_installed() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(s.name == "locara-wyoming" and s.value == "locara_wyoming.cli:main" for s in scripts)
