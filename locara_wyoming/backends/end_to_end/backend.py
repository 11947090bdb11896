"""`moshi-…`, `moshi-mlx-…` and `personaplex-…`: end-to-end speech models, loaded
once at start and shared by every room's session."""

from __future__ import annotations

import sys
from typing import Any

from ...audio_format import PcmFormat
from ...config import EndToEndModelConfig, LocaraConfig, PersonaConfig
from ...conversation.agent import ConversationAgent
from ...engines.engine import Engine, Persona
from ...stages.loading import Stages
from ..base import SessionSettings, VoiceBackend, VoiceSession
from .batcher import FrameBatcher, SlotUser
from .engine_process import EngineProcessRunner
from .runner import EngineFailedError, EngineRunner, ThreadRunner
from .session import EndToEndSession
from .weights import model_directory, model_entry

HELPER_ENGINES = {"moshi-mlx-": "mlx", "personaplex-": "personaplex"}
"""Prefixes whose library runs in an engine process of its own environment."""


def _engine_name(model_id: str) -> str:
    return next((e for prefix, e in HELPER_ENGINES.items() if model_id.startswith(prefix)), "moshi")


def max_sessions(entry: EndToEndModelConfig) -> int:
    """The entry's own, else 4 for `moshi-` and 1 for a helper's single conversation."""
    return entry.max_sessions or (4 if _engine_name(entry.id) == "moshi" else 1)


def make_runner(entry: EndToEndModelConfig) -> EngineRunner:
    directory = model_directory(entry)
    engine = _engine_name(entry.id)
    slots = max_sessions(entry)
    if engine == "moshi" and entry.python is None:

        def load() -> Engine:
            try:
                from ...engines.torch_engine import TorchMoshiEngine
            except ImportError as error:
                raise EngineFailedError(
                    f"{entry.id} needs PyTorch and moshi ({error}): scripts/setup.sh moshi"
                ) from None
            return TorchMoshiEngine(directory, slots, entry.device, entry.threads)

        return ThreadRunner(load)
    command = [
        entry.python or sys.executable, "-m", "locara_wyoming.engines", "--engine", engine,
        "--model-dir", str(directory), "--slots", str(slots),
        "--device", entry.device, "--threads", str(entry.threads),
    ]  # fmt: skip
    return EngineProcessRunner(entry.id, command)


class EndToEndBackend(VoiceBackend):
    def __init__(
        self, model_id: str, stages: Stages, agent: ConversationAgent, config: LocaraConfig
    ) -> None:
        self.model_id = model_id
        self.entry = model_entry(config, model_id)
        self.runner = make_runner(self.entry)
        self.batcher = FrameBatcher(
            model_id,
            self.runner,
            max_sessions(self.entry),
            self.entry.batch_wait_ms / 1000,
        )

    async def start(self) -> None:
        await self.runner.start()
        self.input_rate = self.runner.sample_rate
        self.frame_samples = self.runner.frame_samples
        self.batcher.max_sessions = min(self.batcher.max_sessions, self.runner.slots)
        self.batcher.start()

    def output_format(self, persona: PersonaConfig) -> PcmFormat:
        return PcmFormat(self.runner.sample_rate, 2, 1)

    async def open(self, settings: SessionSettings) -> VoiceSession:
        persona = settings.persona
        session = EndToEndSession(self.batcher, self.frame_samples, self.output_format(persona))
        user = SlotUser(
            Persona(persona.system_prompt, persona.voice_prompt), session.deliver, session.fail
        )
        session.slot = await self.batcher.attach(user)
        return session

    @property
    def healthy(self) -> bool:
        return not self.batcher.recovering

    def status(self, since_step: int = 0) -> dict[str, Any]:
        return {
            "sessions": self.batcher.sessions,
            "max_sessions": self.batcher.max_sessions,
            **self.batcher.stats.summary(since_step),
        }

    async def close(self) -> None:
        await self.batcher.close()
