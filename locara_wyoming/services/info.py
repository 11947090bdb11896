"""The `info` answer to `describe`: what this server really offers."""

from __future__ import annotations

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    HandleModel,
    HandleProgram,
    Info,
    TtsProgram,
    TtsVoice,
    TtsVoiceSpeaker,
)

from .. import __version__
from ..config import LocaraConfig
from ..stages.description import ModelDescription
from .stages import Stages

ASR_PROGRAM = "locara-asr"
TTS_PROGRAM = "locara-tts"
HANDLE_PROGRAM = "locara-agent"

LOCARA = Attribution(name="Locara", url="https://github.com/locara/locara-wyoming")


def _attribution(model: ModelDescription) -> Attribution:
    return Attribution(name=model.author, url=model.url)


def build_info(stages: Stages, config: LocaraConfig) -> Info:
    stt = stages.stt.description
    llm = stages.llm.description
    persona_languages = sorted({p.language for p in config.personas})
    return Info(
        asr=[
            AsrProgram(
                name=ASR_PROGRAM,
                attribution=LOCARA,
                installed=True,
                description="Locara speech-to-text",
                version=__version__,
                models=[
                    AsrModel(
                        name=stt.name,
                        attribution=_attribution(stt),
                        installed=True,
                        description=stt.description,
                        version=stt.version,
                        languages=stt.languages,
                    )
                ],
                supports_transcript_streaming=True,
            )
        ],
        tts=[
            TtsProgram(
                name=TTS_PROGRAM,
                attribution=LOCARA,
                installed=True,
                description="Locara text-to-speech",
                version=__version__,
                voices=[
                    TtsVoice(
                        name=name,
                        attribution=_attribution(voice.model),
                        installed=True,
                        description=voice.model.description,
                        version=voice.model.version,
                        languages=voice.model.languages,
                        speakers=[TtsVoiceSpeaker(name=s) for s in voice.speakers] or None,
                    )
                    for name, voice in stages.tts.voices.items()
                ],
                supports_synthesize_streaming=True,
            )
        ],
        handle=[
            HandleProgram(
                name=HANDLE_PROGRAM,
                attribution=LOCARA,
                installed=True,
                description=f"Locara conversation agent ({llm.name})",
                version=__version__,
                models=[
                    HandleModel(
                        name=llm.name,
                        attribution=_attribution(llm),
                        installed=True,
                        description=llm.description,
                        version=llm.version,
                        languages=persona_languages,
                    )
                ],
                supports_handled_streaming=True,
                supports_home_control=False,
            )
        ],
    )
