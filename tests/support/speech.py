"""Real speech for the tests, from the embedded Piper voice, and how close heard words
are to said ones."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import soxr

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.bench.utterances import speak

if TYPE_CHECKING:
    from piper import PiperVoice


class Speech:
    """Real speech from the embedded Piper voice, in any PCM format."""

    def __init__(self, voice: PiperVoice) -> None:
        self.voice = voice
        self.rate = voice.config.sample_rate

    def at_16k(self, text: str) -> np.ndarray:
        return soxr.resample(self.float32(text), self.rate, 16000).astype(np.float32)

    def float32(self, text: str) -> np.ndarray:
        pcm = speak(self.voice, text)
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0

    def pcm(self, text: str, audio: PcmFormat) -> bytes:
        samples = soxr.resample(self.float32(text), self.rate, audio.rate)
        samples = np.repeat(samples[:, None], audio.channels, axis=1).reshape(-1)
        if audio.width == 1:
            return (np.clip(samples, -1, 1) * 127 + 128).astype(np.uint8).tobytes()
        if audio.width == 2:
            return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        if audio.width == 3:
            as_int = (np.clip(samples, -1, 1) * (2**23 - 1)).astype("<i4")
            return as_int.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        return (np.clip(samples, -1, 1) * (2**31 - 1)).astype("<i4").tobytes()


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate, on lower-case words without punctuation."""
    import jiwer  # the model tier's (the server extra's), not the base install's

    return float(jiwer.wer(_words(reference), _words(hypothesis)))


def word_errors(reference: str, hypothesis: str) -> int:
    """Words substituted, deleted or inserted, on lower-case words without punctuation."""
    import jiwer

    out = jiwer.process_words(_words(reference), _words(hypothesis))
    return int(out.substitutions + out.deletions + out.insertions)
