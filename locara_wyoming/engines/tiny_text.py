"""Text pieces from Moshi's text stream, and the tiny tokenizer of the test models."""

from __future__ import annotations

import io
from typing import Any

import sentencepiece

PAD_TOKENS = (0, 3)
"""Moshi's text stream: 0 is the end of padding, 3 padding; neither is text."""
CORPUS = [
    "hello there how are you today",
    "the weather is fine thanks for asking",
    "turn on the kitchen lights please",
    "what time is it in the living room",
]


def text_piece(tokenizer: Any, token: int) -> str:
    """A token as text (`""` for padding and control tokens)."""
    if token < 0 or token in PAD_TOKENS or tokenizer.is_control(token):
        return ""
    return str(tokenizer.id_to_piece(token)).replace("\u2581", " ")


def train_tokenizer() -> bytes:
    """A 32-piece sentencepiece model with Moshi's special ids (3 is padding)."""
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10), model_writer=model, vocab_size=32,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2,
    )  # fmt: skip
    return model.getvalue()
