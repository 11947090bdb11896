"""Real speech for the tests: the embedded Piper voice, or clips it once spoke.

`Speech` needs Piper (a test marked `models` gets one from the `speech` fixture).
`RecordedSpeech` plays back clips of that same voice kept in tests/data/speech, so a
test of audio logic (the echo gate) runs in the fast tier without any model. Piper
speaks without random variation here (`speak`), so a clip is what the voice says today;
`python -m tests.support.speech` records the clips again, from the full install.
"""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.bench.utterances import speak

if TYPE_CHECKING:
    from piper import PiperVoice

CLIPS = Path(__file__).resolve().parents[1] / "data" / "speech"
RECORDED = [
    "The weather today is sunny and warm, with a light breeze.",
    "Once upon a time there was a dragon who lived on a mountain.",
    "Stop, please.",
]
"""What `RecordedSpeech` can say: the echo gate's replies and the user's barge-in."""


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


class RecordedSpeech:
    """The embedded voice's clips of `RECORDED`, at 16 kHz, without Piper."""

    def at_16k(self, text: str) -> np.ndarray:
        path = clip_path(text)
        assert path.exists(), f"no clip of {text!r}: add it to RECORDED and record again"
        with wave.open(str(path), "rb") as clip:
            pcm = clip.readframes(clip.getnframes())
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def clip_path(text: str) -> Path:
    return CLIPS / (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") + ".wav")


def record(speech: Speech) -> None:
    """Speak every text of `RECORDED` into its clip (16 kHz, 16-bit, mono)."""
    CLIPS.mkdir(parents=True, exist_ok=True)
    for text in RECORDED:
        samples = np.clip(speech.at_16k(text), -1, 1)
        with wave.open(str(clip_path(text)), "wb") as clip:
            clip.setnchannels(1)
            clip.setsampwidth(2)
            clip.setframerate(16000)
            clip.writeframes((samples * 32767).astype("<i2").tobytes())


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


if __name__ == "__main__":
    from piper import PiperVoice

    from locara_wyoming.embedded_models import PIPER_JOE

    record(Speech(PiperVoice.load(PIPER_JOE.path())))
    print(f"Recorded {len(RECORDED)} clips in {CLIPS}")
