"""Which backend serves a model id: chosen by the id's prefix, created once, then shared."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import END_TO_END_PREFIXES, ConfigError, LocaraConfig
from ..conversation.agent import ConversationAgent
from ..stages.loading import Stages
from .base import VoiceBackend
from .end_to_end.backend import EndToEndBackend
from .end_to_end.weights import model_entry
from .pipeline.backend import PipelineBackend

_LOGGER = logging.getLogger(__name__)

BackendFactory = Callable[[str, Stages, ConversationAgent, LocaraConfig], VoiceBackend]

FACTORIES: dict[str, BackendFactory] = {
    "voice-pipeline-": PipelineBackend,
    **dict.fromkeys(END_TO_END_PREFIXES, EndToEndBackend),
}


class UnknownBackendError(LookupError):
    pass


def check_model_id(model_id: str) -> None:
    if not any(model_id.startswith(prefix) for prefix in FACTORIES):
        known = ", ".join(f"{prefix}…" for prefix in FACTORIES)
        raise UnknownBackendError(f"backend {model_id!r} matches no known prefix ({known})")


def configured_backends(config: LocaraConfig) -> dict[str, str]:
    """Every backend the configuration names, by the key that names it."""
    keys = {"sessions.default_backend": config.sessions.default_backend}
    keys.update({f"rooms[{i}].backend": r.backend for i, r in enumerate(config.rooms) if r.backend})
    return keys


def check_configured_backends(config: LocaraConfig) -> None:
    """Every backend the configuration names must match a known prefix, and an
    end-to-end one must say where its weights are."""
    for key, model_id in configured_backends(config).items():
        try:
            check_model_id(model_id)
            if model_id.startswith(END_TO_END_PREFIXES):
                model_entry(config, model_id)
        except (UnknownBackendError, ConfigError) as error:
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

    def loaded(self, model_id: str) -> bool:
        return model_id in self._loaded

    async def discard(self, model_id: str) -> None:
        """Close and drop a backend that failed to start, so that a later request tries
        afresh."""
        backend = self._loaded.pop(model_id, None)
        if backend is not None:
            try:
                await backend.close()
            except Exception:
                _LOGGER.exception("closing %s, which failed to start", model_id)

    async def start_configured(self) -> None:
        """Load every backend the configuration names, so that no session waits for one."""
        model_ids = sorted(set(configured_backends(self._config).values()))
        for number, model_id in enumerate(model_ids, 1):
            _LOGGER.info("[backend %d/%d] starting %s…", number, len(model_ids), model_id)
            await self.get(model_id).start()

    def status(self, since_step: int = 0) -> dict[str, dict[str, object]]:
        return {
            model_id: {"healthy": backend.healthy, **backend.status(since_step)}
            for model_id, backend in self._loaded.items()
        }

    def available(self, config: LocaraConfig) -> list[str]:
        """The backends a room can be given: those loaded, named, or with a [[models]] entry."""
        return sorted(
            {*self._loaded, *configured_backends(config).values(), *(m.id for m in config.models)}
        )

    async def close(self) -> None:
        for backend in self._loaded.values():
            await backend.close()
