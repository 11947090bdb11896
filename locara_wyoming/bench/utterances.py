"""What the benchmark's satellites say: sets spoken by Piper, or the user's WAVs.

Every utterance keeps its exact words and the sample positions of its voiced parts,
so that the benchmark knows when the person really stopped talking (the last voiced
sample), however long they paused before it.

The paused set is people who stop in the middle of a thought: phrases joined with
300-900 ms of silence ("Turn on the ... kitchen light"), hesitations ("um", "uh")
spoken as their own phrase, trailing clauses after a comma, lists read with pauses.
The embedded Piper voice has one speaker; the set speaks it in three voices and at
three paces (`Style`).
"""

from __future__ import annotations

import itertools
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr

from ..audio_format import MonoConverter, PcmFormat, pcm_to_float
from ..client.simulated import VOICED_LEVEL, Utterance
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

PAUSED_PHRASES: list[list[str]] = [
    ["Turn on the", "kitchen light."],
    ["Could you tell me,", "um,", "what the weather will be,", "tomorrow morning?"],
    ["I need eggs,", "milk,", "and bread."],
    ["Set a timer for", "ten minutes."],
    ["What is the capital of", "Australia?"],
    ["Uh,", "what time is it in Tokyo?"],
    ["Remind me to call my sister,", "after dinner."],
    ["Play some music,", "something calm,", "like jazz."],
    ["How long should I boil", "an egg?"],
    ["Um,", "can you tell me a joke?"],
    ["Add apples,", "bananas,", "and oranges", "to the shopping list."],
    ["Turn off the lights in the", "living room."],
    ["What should I cook tonight,", "something with", "chicken maybe?"],
    ["I was wondering,", "uh,", "how far away is the moon?"],
    ["Tell me the news,", "but only the headlines."],
    ["Open the", "um,", "garage door."],
    ["The recipe needs flour,", "sugar,", "butter,", "and two eggs."],
    ["Is it going to rain", "this weekend?"],
    ["Wake me up at seven,", "please."],
    ["Can you explain why", "the sky is blue?"],
    ["Call mom,", "no wait,", "call dad."],
    ["What is a good name for", "uh,", "a small black cat?"],
    ["Read me a poem,", "a short one,", "about the sea."],
    ["Pack a towel,", "sunscreen,", "a hat,", "and some water."],
]
"""The paused set: each utterance's phrases, spoken one by one with a pause after each."""

PAUSES_MS = (600, 350, 800, 450, 900, 300, 700, 500, 850, 400, 650, 550)
"""The pauses between phrases, from the last voiced sample of one to the first of the
next, taken in turn over the whole set."""

EDGE_MS = 20
"""How much of a phrase's own quiet onset and decay (below the voiced level) it keeps."""

FRAME_MS = 10
"""The frames over which a user's WAV is judged voiced or not."""
NOISE_MARGIN = 3.0
"""A WAV's frame is voiced above this many times its noise floor (about 10 dB)."""


@dataclass(frozen=True)
class Style:
    """How the one-speaker Piper voice speaks a paused utterance.

    `pitch` shifts pitch and formants together: Piper speaks `pitch` times slower
    (its `length_scale`) and the audio is then resampled as if its rate were `pitch`
    times the model's, which raises pitch and formants by `pitch` and restores the
    length. `pace` multiplies Piper's `length_scale` on top: above 1 slower.
    """

    voice: str
    pitch: float
    pace: str

    @property
    def length_scale(self) -> float:
        return self.pitch * PACES[self.pace]

    @property
    def name(self) -> str:
        return f"{self.voice}, {self.pace}"


VOICES = {"joe": 1.0, "joe-high": 1.15, "joe-low": 0.87}
"""Piper's joe as it is, and shifted up 15 % and down 13 % in pitch and formants."""
PACES = {"normal": 1.0, "slow": 1.35, "fast": 0.75}
"""Piper's `length_scale` for each pace. Piper rounds each sound's length up to whole
frames, so the speech's length changes less than the scale: over the paused set's
phrases 1.35 speaks about 1.2 times as long and 0.75 about 0.8 times."""


def paused_style(index: int) -> Style:
    """The `index`th utterance's style: the voices in turn, each at the paces in turn
    (nine combinations, repeating)."""
    voices, paces = list(VOICES), list(PACES)
    voice = voices[index % len(voices)]
    return Style(voice, VOICES[voice], paces[(index // len(voices)) % len(paces)])


Span = tuple[int, int]
"""[start, stop) sample positions."""


@dataclass(frozen=True)
class Question:
    """One utterance as the microphone says it: float32 samples at 16 kHz."""

    text: str
    """The exact words (for a user's WAV, its file name)."""
    samples: np.ndarray
    voiced: tuple[Span, ...]
    """The voiced parts, in order; empty when nothing in it is voiced."""
    voice: str = "joe, normal"

    @property
    def last_voiced(self) -> int | None:
        """The position of the last voiced sample: where the person really stopped."""
        return self.voiced[-1][1] - 1 if self.voiced else None

    def real_end_at(self, said: Utterance) -> float | None:
        """When the microphone sent the last voiced sample, on its clock.

        The microphone times the first sample above its `VOICED_LEVEL` (`said.voiced_start`),
        so the clock of any other sample follows from its distance to that one.
        """
        loud = _loud_span(self.samples)
        last = self.last_voiced
        if loud is None or last is None:
            return None
        return said.voiced_start + float(last - loud[0]) / MIC_RATE


def _loud_span(samples: np.ndarray) -> Span | None:
    """From the first to past the last sample above the microphone's voiced level."""
    loud = np.flatnonzero(np.abs(samples) > VOICED_LEVEL)
    return (int(loud[0]), int(loud[-1]) + 1) if len(loud) else None


def question(text: str, samples: np.ndarray, voice: str = "joe, normal") -> Question:
    """A clean utterance (Piper's, without noise): voiced from its first to its last
    sample above the microphone's voiced level."""
    span = _loud_span(samples)
    return Question(text, samples, () if span is None else (span,), voice)


def load_voice() -> PiperVoice:
    from piper import PiperVoice

    return PiperVoice.load(PIPER_JOE.path())


def speak(voice: PiperVoice, text: str, length_scale: float | None = None) -> bytes:
    """`text` as 16-bit PCM at the voice's rate, without Piper's random variation (noise
    scales 0): the same audio at every run, so that a benchmark or a test hears the same
    words each time (with the variation, Whisper now and then misheard a test's words).
    `length_scale` above 1 speaks slower (None: the voice's own)."""
    from piper import SynthesisConfig

    steady = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
    return b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, steady))


def synthesize(texts: list[str], voice: PiperVoice | None = None) -> list[np.ndarray]:
    """Each text spoken by the embedded Piper voice, as float32 at 16 kHz."""
    voice = voice or load_voice()
    spoken = []
    for text in texts:
        pcm = speak(voice, text)
        converter = MonoConverter(PcmFormat(voice.config.sample_rate, 2, 1), MIC_RATE)
        spoken.append(converter.convert(pcm, last=True))
    return spoken


def clean_set(voice: PiperVoice | None = None) -> list[Question]:
    """The ten questions, each said at once without a pause."""
    return [question(t, s) for t, s in zip(QUESTIONS, synthesize(QUESTIONS, voice), strict=True)]


def speak_styled(voice: PiperVoice, text: str, style: Style) -> np.ndarray:
    """`text` in `style`, as float32 at 16 kHz."""
    samples = pcm_to_float(speak(voice, text, style.length_scale), 2)
    played_at = voice.config.sample_rate * style.pitch
    return np.asarray(soxr.resample(samples, played_at, MIC_RATE), dtype=np.float32)


def join_phrases(
    phrases: list[np.ndarray], pauses_ms: list[float]
) -> tuple[np.ndarray, list[Span]]:
    """Phrases one after the other, `pauses_ms[i]` from the last voiced sample of phrase
    `i` to the first of phrase `i + 1`; the audio and each phrase's voiced span in it.

    Each phrase keeps up to `EDGE_MS` of its quiet onset and decay; the rest of a pause
    is digital silence.
    """
    if len(pauses_ms) != len(phrases) - 1:
        raise ValueError(f"{len(phrases)} phrases need {len(phrases) - 1} pauses")
    edge = MIC_RATE * EDGE_MS // 1000
    parts: list[np.ndarray] = []
    spans: list[Span] = []
    length = previous_decay = 0
    for index, phrase in enumerate(phrases):
        span = _loud_span(phrase)
        if span is None:
            raise ValueError(f"phrase {index} has nothing voiced")
        onset, decay = min(edge, span[0]), min(edge, len(phrase) - span[1])
        if index:
            pause = round(pauses_ms[index - 1] * MIC_RATE / 1000) - previous_decay - onset
            parts.append(np.zeros(pause, np.float32))
            length += pause
        parts.append(phrase[span[0] - onset : span[1] + decay])
        spans.append((length + onset, length + onset + span[1] - span[0]))
        length += len(parts[-1])
        previous_decay = decay
    return np.concatenate(parts), spans


def paused_set(voice: PiperVoice | None = None) -> list[Question]:
    """`PAUSED_PHRASES`, each in its `paused_style`, with `PAUSES_MS` in turn; the same
    audio at every run."""
    voice = voice or load_voice()
    pauses = itertools.cycle(PAUSES_MS)
    spoken = []
    for index, phrases in enumerate(PAUSED_PHRASES):
        style = paused_style(index)
        audio = [speak_styled(voice, phrase, style) for phrase in phrases]
        samples, spans = join_phrases(audio, [next(pauses) for _ in phrases[1:]])
        spoken.append(Question(" ".join(phrases), samples, tuple(spans), style.name))
    return spoken


def estimated_voiced(samples: np.ndarray) -> tuple[Span, ...]:
    """A recording's voiced part, by energy: from the first to the last sample above
    the threshold in a voiced frame, a frame being voiced when its level is above both
    the microphone's voiced level and `NOISE_MARGIN` times the recording's noise floor
    (its 10th-percentile frame level). Empty when no frame is voiced."""
    frame = MIC_RATE * FRAME_MS // 1000
    count = len(samples) // frame
    if not count:
        return ()
    frames = samples[: count * frame].reshape(count, frame).astype(np.float64)
    levels = np.sqrt(np.mean(np.square(frames), axis=1))
    threshold = max(VOICED_LEVEL, NOISE_MARGIN * float(np.percentile(levels, 10)))
    voiced = np.flatnonzero(levels > threshold)
    if not len(voiced):
        return ()
    first, last = int(voiced[0]), int(voiced[-1])
    start = first * frame + int(np.flatnonzero(np.abs(frames[first]) > threshold)[0])
    stop = last * frame + int(np.flatnonzero(np.abs(frames[last]) > threshold)[-1]) + 1
    return ((start, stop),)


def load_wavs(folder: Path) -> list[Question]:
    """Every `*.wav` in the folder (any rate, width and channels), as float32 at 16 kHz,
    voiced where `estimated_voiced` finds it."""
    paths = sorted(folder.glob("*.wav"))
    if not paths:
        raise FileNotFoundError(f"no .wav files in {folder}")
    spoken = []
    for path in paths:
        with wave.open(str(path), "rb") as wav:
            audio = PcmFormat(wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            pcm = wav.readframes(wav.getnframes())
        samples = MonoConverter(audio, MIC_RATE).convert(pcm, last=True)
        spoken.append(Question(path.name, samples, estimated_voiced(samples), "wav"))
    return spoken


def write_wav(path: Path, samples: np.ndarray, rate: int = MIC_RATE) -> Path:
    """Mono float32 samples as a 16-bit WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path
