"""Piper's pieces of a reply: one that stops mid-sentence runs straight into the next."""

from __future__ import annotations

import numpy as np
import pytest

from locara_wyoming.config import LimitsConfig, TtsConfig
from locara_wyoming.stages.tts import PiperTts

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
async def piper() -> PiperTts:
    tts = PiperTts(TtsConfig(), LimitsConfig())
    await tts.load()
    return tts


async def trailing_silence_ms(tts: PiperTts, text: str) -> float:
    voice = tts.default_voice
    pcm = b"".join([block async for block in tts.synthesize(text, voice, None)])
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    last_sound = np.flatnonzero(samples > 100)[-1]
    return 1000 * (len(samples) - 1 - last_sound) / tts.voices[voice].audio.rate


async def test_a_piece_that_ends_a_sentence_keeps_pipers_pause(piper: PiperTts) -> None:
    assert await trailing_silence_ms(piper, "What is the weather like in Paris today?") > 80


@pytest.mark.parametrize("piece", ["What is the weather like,", "The lights in the kitchen and"])
async def test_a_piece_that_stops_mid_sentence_keeps_a_short_pause(
    piper: PiperTts, piece: str
) -> None:
    assert await trailing_silence_ms(piper, piece) <= 41
