"""Whisper on a window sized to the utterance, called through CTranslate2 directly.

faster-whisper always pads the log-mel features to Whisper's 30 s window, so the encoder
costs as much for a 2 s question as for 30 s of speech (~290 ms of the ~380 ms that
`tiny.en` takes on two cores). CTranslate2's Whisper accepts shorter inputs: here the
encoder sees the utterance plus a margin of padding. Whisper was trained on 30 s windows
and loops on much shorter ones (repeating the sentence until the length limit: seen at
8 s, not at 10-12 s), so the window has a floor, decoding is capped in proportion to the
audio, and a result that repeats, reaches the cap or scores poorly is refused; the
caller then runs faster-whisper's normal 30 s path.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ctranslate2
import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

FRAMES_PER_SECOND = 100
"""Log-mel frames per second of audio (hop of 160 samples at 16 kHz)."""
FULL_WINDOW_S = 30
MAX_NEW_TOKENS = 224
"""What CTranslate2 allows at most: half of Whisper's 448 decoder positions."""
TOKENS_PER_SECOND = 8
"""Decoding cap per second of audio; fast speech is ~4 words, ~5 tokens, a second."""
TOKEN_SLACK = 8
# Whisper's own thresholds for a failed decoding (faster-whisper's defaults).
MAX_COMPRESSION_RATIO = 2.4
MIN_AVG_LOGPROB = -1.0
MIN_REPEATED_WORDS = 4
"""A run of this many words said twice in a row is taken for a loop: one that ends
before the cap, at a compression ratio under 2.4, still repeats a whole sentence."""


@dataclass(frozen=True)
class WindowResult:
    """The short window's transcript, or why the 30 s window should be used instead."""

    text: str
    refused: str | None = None


class ShortWindowWhisper:
    """Greedy or beam decoding, without timestamps, of one utterance of at most 30 s."""

    def __init__(
        self, model: WhisperModel, floor_s: float, margin_s: float, beam_size: int
    ) -> None:
        self._model = model
        self._floor_frames = round(floor_s * FRAMES_PER_SECOND)
        self._margin_frames = round(margin_s * FRAMES_PER_SECOND)
        self._beam_size = beam_size
        self._tokenizers: dict[str, tuple[Tokenizer, list[int]]] = {}

    def transcribe(self, audio: np.ndarray, language: str) -> WindowResult:
        seconds = len(audio) / self._model.feature_extractor.sampling_rate
        if seconds > FULL_WINDOW_S:
            return WindowResult("", f"{seconds:.1f} s is longer than one window")
        tokenizer, suppress = self._tokenizer(language)
        features = self._features(audio)
        max_new = min(MAX_NEW_TOKENS, math.ceil(TOKENS_PER_SECOND * seconds) + TOKEN_SLACK)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        result = self._model.model.generate(
            features,
            [prompt],
            beam_size=self._beam_size,
            # CTranslate2 decodes at most min(max_length / 2, max_length - prompt) tokens.
            max_length=2 * max_new,
            return_scores=True,
            suppress_blank=True,
            suppress_tokens=suppress,
        )[0]
        tokens: list[int] = result.sequences_ids[0]
        text = tokenizer.decode(tokens).strip()
        return WindowResult(text, _refusal(text, tokens, result.scores[0], max_new))

    def _features(self, audio: np.ndarray) -> ctranslate2.StorageView:
        """Log-mel features of the audio, padded (as faster-whisper pads to 30 s) to the
        utterance plus the margin, at least the floor and at most 30 s."""
        extractor = self._model.feature_extractor
        mel = extractor(audio)
        content = mel.shape[-1] - 1  # the last frame covers only padding
        frames = max(self._floor_frames, content + self._margin_frames)
        frames = min(FULL_WINDOW_S * FRAMES_PER_SECOND, frames + frames % 2)  # conv stride 2
        window = pad_or_trim(mel[:, :content], frames)
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(window[np.newaxis]))

    def _tokenizer(self, language: str) -> tuple[Tokenizer, list[int]]:
        if language not in self._tokenizers:
            model = self._model
            tokenizer = Tokenizer(
                model.hf_tokenizer, model.model.is_multilingual, "transcribe", language
            )
            self._tokenizers[language] = (tokenizer, get_suppressed_tokens(tokenizer, [-1]))
        return self._tokenizers[language]


def _refusal(text: str, tokens: list[int], score: float, max_new: int) -> str | None:
    """Why a decoding looks wrong, as Whisper judges its own fallbacks, or None."""
    if not text:
        return "no words"
    if len(tokens) >= max_new:
        return f"reached the cap of {max_new} tokens"
    if _repeats(text):
        return "repeats a phrase"
    ratio = get_compression_ratio(text)
    if ratio > MAX_COMPRESSION_RATIO:
        return f"repeats (compression ratio {ratio:.2f})"
    avg_logprob = score * len(tokens) / (len(tokens) + 1)  # faster-whisper's measure
    if avg_logprob < MIN_AVG_LOGPROB:
        return f"unsure (average log probability {avg_logprob:.2f})"
    return None


def _repeats(text: str) -> bool:
    """Whether some run of at least `MIN_REPEATED_WORDS` words comes twice in a row."""
    words = [word.strip(string.punctuation).lower() for word in text.split()]
    return any(
        words[start : start + size] == words[start + size : start + 2 * size]
        for size in range(MIN_REPEATED_WORDS, len(words) // 2 + 1)
        for start in range(len(words) - 2 * size + 1)
    )
