"""Silero VAD from the embedded package: speech scores high, silence low, streams independent."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from locara_wyoming.config import VadConfig
from locara_wyoming.stages.vad import FRAME_SAMPLES, VAD_RATE, SileroVad

from .support.speech import Speech

pytestmark = pytest.mark.models


def test_speech_and_silence_are_told_apart(speech: Speech) -> None:
    vad = SileroVad(VadConfig())
    vad.load()
    voice = soxr.resample(speech.float32("Hello, how are you doing today?"), speech.rate, VAD_RATE)
    silence = np.zeros(VAD_RATE, dtype=np.float32)
    stream = vad.stream()
    silent = stream.probabilities(silence)
    spoken = stream.probabilities(voice)
    assert len(silent) == VAD_RATE // FRAME_SAMPLES
    assert max(silent) < 0.1
    assert np.mean(np.array(spoken) > 0.5) > 0.5


def test_odd_chunk_sizes_give_the_same_frames(speech: Speech) -> None:
    vad = SileroVad(VadConfig())
    vad.load()
    voice = soxr.resample(speech.float32("Open the window."), speech.rate, VAD_RATE)
    whole = vad.stream().probabilities(voice)
    pieces: list[float] = []
    stream = vad.stream()
    for start in range(0, len(voice), 333):
        pieces.extend(stream.probabilities(voice[start : start + 333]))
    assert len(pieces) == len(whole)
    assert np.allclose(pieces, whole, atol=1e-5)
