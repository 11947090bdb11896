"""`describe` and `select-program`: what this server really offers, as `info`."""

from __future__ import annotations

from typing import Any

from wyoming.event import Event
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    HandleModel,
    HandleProgram,
    Info,
    SelectProgram,
    TtsProgram,
    TtsVoice,
    TtsVoiceSpeaker,
)

from .. import __version__
from ..config import LocaraConfig
from ..errors import NotFound
from ..protocol.parsing import parse_event
from ..stages.description import ModelDescription
from ..stages.loading import Stages
from .program import Handler, ProgramLink

ASR_PROGRAM = "locara-asr"
TTS_PROGRAM = "locara-tts"
HANDLE_PROGRAM = "locara-agent"

LOCARA = Attribution(name="Locara", url="https://github.com/locara/locara-wyoming")


def _artifact(model: ModelDescription) -> dict[str, Any]:
    """The fields every Wyoming model or voice shares, from a loaded model's description."""
    return {
        "name": model.name,
        "attribution": Attribution(name=model.author, url=model.url),
        "installed": True,
        "description": model.description,
        "version": model.version,
        "languages": model.languages,
    }


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
                models=[AsrModel(**_artifact(stt))],
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
                        **_artifact(voice.model),
                        speakers=[TtsVoiceSpeaker(name=s) for s in voice.speakers] or None,
                    )
                    for voice in stages.tts.voices.values()
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
                models=[HandleModel(**{**_artifact(llm), "languages": persona_languages})],
                supports_handled_streaming=True,
                supports_home_control=False,
            )
        ],
    )


class DescribeProgram:
    """Answers from the configuration as it is now: a settings change shows at once."""

    def __init__(self, link: ProgramLink) -> None:
        self._link = link

    def handlers(self) -> dict[str, Handler]:
        return {"describe": self._describe, "select-program": self._select}

    def _info(self) -> Info:
        return build_info(self._link.context.stages, self._link.context.config)

    async def _describe(self, event: Event) -> None:
        await self._link.write(self._info().event())

    async def _select(self, event: Event) -> None:
        name = parse_event(SelectProgram, event).name
        info = self._info()
        programs = [p.name for p in (*info.asr, *info.tts, *info.handle)]
        if name not in programs:
            raise NotFound(f"no program named {name!r}; programs: {programs}")
