"""A tiny Moshi with random weights, built with the real library code, for tests and
`bench moshi --tiny`: the streaming loop, frame sizes, codebooks and delays of the
real model (16 codebooks, 8 for the model's voice, 2048 entries, 1920 samples a frame at
24 kHz), with small layers so that one frame takes milliseconds on a CPU. It talks
nonsense: random weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sentencepiece
import torch
from moshi.models import loaders
from safetensors.torch import save_file

from .tiny_text import train_tokenizer

TOKENIZER_NAME = "tokenizer.model"
MIMI_NAME = "mimi.safetensors"
MIMI_CONFIG_NAME = "mimi_config.json"


def _mimi_config() -> dict[str, object]:
    config: dict[str, Any] = json.loads(json.dumps(loaders._mimi_config))  # a deep copy
    config["seanet"].update(dimension=64, n_filters=4)
    config["quantizer"].update(dimension=32, n_q=16, input_dimension=64, output_dimension=64)
    config["transformer"].update(
        d_model=64, num_heads=2, num_layers=1, dim_feedforward=128,
        input_dimension=64, output_dimensions=[64],
    )  # fmt: skip
    return config


def _lm_config(text_card: int) -> dict[str, object]:
    config = dict(loaders._lm_kwargs)
    config.update(
        dim=64, text_card=text_card, num_heads=4, num_layers=2, hidden_scale=2, context=100,
        depformer_dim=64, depformer_dim_feedforward=128, depformer_num_heads=2,
        depformer_num_layers=1,
    )  # fmt: skip
    return config


def make_tiny_moshi(model_dir: Path, seed: int = 0, greedy: bool = False) -> Path:
    """Write config.json, random LM and Mimi weights and a tokenizer into `model_dir`;
    `greedy` makes its output repeatable (no sampling)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    (model_dir / TOKENIZER_NAME).write_bytes(tokenizer)
    text_card = sentencepiece.SentencePieceProcessor(model_proto=tokenizer).get_piece_size()
    mimi_config = _mimi_config()
    mimi = loaders.get_mimi(None, mimi_config)
    save_file(mimi.state_dict(), str(model_dir / MIMI_NAME))
    (model_dir / MIMI_CONFIG_NAME).write_text(json.dumps(mimi_config, indent=1))
    lm_config = _lm_config(text_card)
    lm = loaders.get_moshi_lm(None, lm_kwargs=lm_config, dtype=torch.float32)
    save_file(
        {k: v.contiguous() for k, v in lm.state_dict().items()}, str(model_dir / loaders.MOSHI_NAME)
    )
    config = {
        **lm_config,
        "moshi_name": loaders.MOSHI_NAME,
        "mimi_name": MIMI_NAME,
        "mimi_config_name": MIMI_CONFIG_NAME,
        "tokenizer_name": TOKENIZER_NAME,
        "lm_gen_config": {"use_sampling": not greedy},
    }
    (model_dir / "config.json").write_text(json.dumps(config, indent=1))
    return model_dir
