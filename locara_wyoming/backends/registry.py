"""Which backend serves a model id: chosen by the id's prefix, created once, then shared."""

from __future__ import annotations

from collections.abc import Callable

from ..config import ConfigError, LocaraConfig
from ..services.agent import ConversationAgent
from ..services.stages import Stages
from .base import VoiceBackend
from .pipeline.backend import PipelineBackend

BackendFactory = Callable[[str, Stages, ConversationAgent, LocaraConfig], VoiceBackend]

FACTORIES: dict[str, BackendFactory] = {
    "voice-pipeline-": PipelineBackend,
}


class UnknownBackendError(LookupError):
    pass


def check_model_id(model_id: str) -> None:
    if not any(model_id.startswith(prefix) for prefix in FACTORIES):
        known = ", ".join(f"{prefix}…" for prefix in FACTORIES)
        raise UnknownBackendError(f"backend {model_id!r} matches no known prefix ({known})")


def check_configured_backends(config: LocaraConfig) -> None:
    """Every backend the configuration names must match a known prefix."""
    keys = {"sessions.default_backend": config.sessions.default_backend}
    keys.update({f"rooms[{i}].backend": r.backend for i, r in enumerate(config.rooms) if r.backend})
    for key, model_id in keys.items():
        try:
            check_model_id(model_id)
        except UnknownBackendError as error:
            raise ConfigError(f"configuration: {key} = {model_id!r}: {error}") from None


class Backends:
    def __init__(self, stages: Stages, agent: ConversationAgent, config: LocaraConfig) -> None:
        self._stages = stages
        self._agent = agent
        self._config = config
        self._loaded: dict[str, VoiceBackend] = {}

    def get(self, model_id: str) -> VoiceBackend:
        if model_id not in self._loaded:
            check_model_id(model_id)
            factory = next(f for prefix, f in FACTORIES.items() if model_id.startswith(prefix))
            self._loaded[model_id] = factory(model_id, self._stages, self._agent, self._config)
        return self._loaded[model_id]
