"""`voice-pipeline-…`: sessions on the server's warm STT, LLM and TTS stages."""

from __future__ import annotations

from ...audio_format import PcmFormat
from ...config import LocaraConfig, PersonaConfig
from ...conversation.agent import ConversationAgent
from ...stages.loading import Stages
from ...stages.vad import FRAME_SAMPLES, VAD_RATE
from ..base import SessionSettings, VoiceBackend, VoiceSession
from .session import PipelineSession


class PipelineBackend(VoiceBackend):
    input_rate = VAD_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(
        self, model_id: str, stages: Stages, agent: ConversationAgent, config: LocaraConfig
    ) -> None:
        self.model_id = model_id
        self._stages = stages
        self._agent = agent
        self._config = config

    async def start(self) -> None:
        """The pipeline's stages are the server's own, loaded and warmed with it."""

    async def close(self) -> None:
        """The stages belong to the server, which closes them."""

    def _voice(self, persona: PersonaConfig) -> str:
        return self._stages.tts.resolve_voice(persona.voice, persona.language)

    def output_format(self, persona: PersonaConfig) -> PcmFormat:
        return self._stages.tts.voices[self._voice(persona)].audio

    async def open(self, settings: SessionSettings) -> VoiceSession:
        voice = self._voice(settings.persona)
        return PipelineSession(settings, self._stages, self._agent, self._config, voice)
