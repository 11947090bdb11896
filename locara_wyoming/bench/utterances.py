"""What the benchmark's satellites say: a default set spoken by Piper, or the user's WAVs."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..audio_format import MonoConverter, PcmFormat
from ..embedded_models import PIPER_JOE

if TYPE_CHECKING:
    from piper import PiperVoice

MIC_RATE = 16_000

QUESTIONS = [
    "What is the weather like today?",
    "Hello, how are you today?",
    "What should I cook for dinner tonight?",
    "Can you tell me a fun fact?",
    "What time do people usually eat lunch?",
    "How do I make a cup of tea?",
    "What is a good name for a cat?",
    "Why is the sky blue?",
    "What can I do on a rainy afternoon?",
    "How many legs does a spider have?",
]
STORY_REQUEST = "Tell me a long story about a dragon."
INTERRUPTION = "Stop, please. That is enough, thank you."


def speak(voice: PiperVoice, text: str) -> bytes:
    """`text` as 16-bit PCM at the voice's rate, without Piper's random variation (noise
    scales 0): the same audio at every run, so that a benchmark or a test hears the same
    words each time (with the variation, Whisper now and then misheard a test's words)."""
    from piper import SynthesisConfig

    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    return b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, steady))


def synthesize(texts: list[str]) -> list[np.ndarray]:
    """Each text spoken by the embedded Piper voice, as float32 at 16 kHz."""
    from piper import PiperVoice

    voice = PiperVoice.load(PIPER_JOE.path())
    spoken = []
    for text in texts:
        pcm = speak(voice, text)
        converter = MonoConverter(PcmFormat(voice.config.sample_rate, 2, 1), MIC_RATE)
        spoken.append(converter.convert(pcm, last=True))
    return spoken


def load_wavs(folder: Path) -> list[np.ndarray]:
    """Every `*.wav` in the folder (any rate, width and channels), as float32 at 16 kHz."""
    paths = sorted(folder.glob("*.wav"))
    if not paths:
        raise FileNotFoundError(f"no .wav files in {folder}")
    spoken = []
    for path in paths:
        with wave.open(str(path), "rb") as wav:
            audio = PcmFormat(wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            pcm = wav.readframes(wav.getnframes())
        spoken.append(MonoConverter(audio, MIC_RATE).convert(pcm, last=True))
    return spoken


def write_wav(path: Path, samples: np.ndarray, rate: int = MIC_RATE) -> Path:
    """Mono float32 samples as a 16-bit WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path
