"""The warm model stages, loaded once per process and shared by every connection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from ..audio_format import MonoConverter
from ..config import LocaraConfig
from .llm import ChatMessage, ChatModel, create_llm
from .stt import STT_RATE, SpeechToText, create_stt
from .tts import TextToSpeech, VoiceNotFoundError, create_tts
from .turn_end import SmartTurn, create_turn_end
from .vad import SileroVad

_LOGGER = logging.getLogger(__name__)

WARM_UP_TEXT = "Locara is warming up."


@dataclass
class Stages:
    stt: SpeechToText
    tts: TextToSpeech
    llm: ChatModel
    vad: SileroVad
    turn_end: SmartTurn | None
    """None when no end-of-turn model is installed: turns end on silence alone."""


async def _step(label: str, action: Callable[[], Awaitable[object]]) -> None:
    _LOGGER.info("%s…", label)
    started = time.monotonic()
    await action()
    _LOGGER.info("%s: done in %.1f s", label, time.monotonic() - started)


async def load_stages(config: LocaraConfig) -> Stages:
    """Load every model and run each once, so that no user's first turn pays for it."""
    stages = Stages(
        stt=create_stt(config.stt, config.limits),
        tts=create_tts(config.tts, config.limits),
        llm=create_llm(config.llm, config.limits),
        vad=SileroVad(config.vad),
        turn_end=create_turn_end(config.turn_end, config.limits),
    )
    await _step(
        f"[1/8] loading speech-to-text ({stages.stt.description.description})", stages.stt.load
    )
    await _step("[2/8] loading text-to-speech", stages.tts.load)
    await _step(f"[3/8] loading LLM ({stages.llm.description.description})", stages.llm.load)
    await _step(
        "[4/8] loading voice activity detection", lambda: asyncio.to_thread(stages.vad.load)
    )
    turn_end = stages.turn_end
    if turn_end is not None:
        await _step(f"[5/8] loading {turn_end.description.description}", turn_end.load)
    _check_persona_voices(config, stages.tts)

    speech: list[np.ndarray] = []

    async def warm_speech() -> None:
        voice = stages.tts.default_voice
        pcm = b"".join([block async for block in stages.tts.synthesize(WARM_UP_TEXT, voice, None)])
        converter = MonoConverter(stages.tts.voices[voice].audio, STT_RATE)
        speech.append(converter.convert(pcm, last=True))
        stages.vad.stream().probabilities(speech[0])
        if stages.turn_end is not None:
            await stages.turn_end.complete_probability(speech[0])

    async def warm_stt() -> None:
        _ = [segment async for segment in stages.stt.transcribe(speech[0], None)]

    async def warm_llm() -> None:
        messages: list[ChatMessage] = [
            {"role": "system", "content": config.persona().system_prompt},
            {"role": "user", "content": "Hello"},
        ]
        await stages.llm.warm(messages)

    await _step(
        "[6/8] warming up text-to-speech, voice activity and end-of-turn detection", warm_speech
    )
    await _step("[7/8] warming up speech-to-text", warm_stt)
    await _step("[8/8] warming up LLM", warm_llm)
    return stages


def _check_persona_voices(config: LocaraConfig, tts: TextToSpeech) -> None:
    for persona in config.personas:
        if persona.voice is None:
            continue
        try:
            tts.resolve_voice(persona.voice)
        except VoiceNotFoundError as error:
            raise VoiceNotFoundError(f"persona {persona.name!r}: voice: {error}") from None
