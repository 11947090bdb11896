"""A tiny moshi_mlx model with random weights, built with the real library: the real
model's streams (16 codebooks, 8 for the model's voice, 2048 entries, moshiko's delays,
1920 samples a frame at 24 kHz) with small layers, for tests. It talks nonsense."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import mlx.core as mx
import sentencepiece
from mlx.utils import tree_flatten
from moshi_mlx.models.lm import Lm, LmConfig
from moshi_mlx.models.mimi import Mimi

from .mlx_engine import mimi_config
from .tiny_text import train_tokenizer

TINY_MIMI = {
    "seanet": {"dimension": 16, "nfilters": 4},
    "transformer": {"d_model": 16, "num_heads": 2, "num_layers": 1, "dim_feedforward": 32},
    "quantizer_dim": 8,
}
TINY_LM = {
    "dim": 64, "num_heads": 4, "num_layers": 2, "causal": True, "layer_scale": None,
    "context": 3000, "max_period": 10000, "positional_embedding": "rope",
    "depformer_dim": 32, "depformer_num_heads": 2, "depformer_num_layers": 1,
    "depformer_dim_feedforward": 128, "depformer_pos_emb": "none", "depformer_context": 8,
    "depformer_max_period": 10000,
    "n_q": 16, "dep_q": 8, "card": 2048, "delays": [0] + ([0] + [1] * 7) * 2,
}  # fmt: skip
# moshi_mlx's Mimi.load_pytorch_weights renames PyTorch keys to MLX ones; these undo it.
TORCH_NAMES = [
    (r"^(en|de)coder\.init_conv1d\.", lambda m: f"{m[1]}coder.model.0."),
    (r"^(en|de)coder\.final_conv1d\.", lambda m: f"{m[1]}coder.model.14."),
    (r"^encoder\.layers\.(\d)\.residuals\.0\.", lambda m: f"encoder.model.{3 * int(m[1]) + 1}."),
    (r"^encoder\.layers\.(\d)\.downsample\.", lambda m: f"encoder.model.{3 * int(m[1]) + 3}."),
    (r"^decoder\.layers\.(\d)\.upsample\.", lambda m: f"decoder.model.{3 * int(m[1]) + 2}."),
    (r"^decoder\.layers\.(\d)\.residuals\.0\.", lambda m: f"decoder.model.{3 * int(m[1]) + 3}."),
    (r"\.block\.(\d)\.", lambda m: f".block.{2 * int(m[1]) + 1}."),
    (r"\.in_proj\.weight$", lambda m: ".in_proj_weight"),
    (r"\.gating\.(linear[12])\.", lambda m: f".{m[1]}."),
]


def torch_tensor(name: str, value: Any) -> tuple[str, Any]:
    """One MLX Mimi parameter as Mimi's PyTorch checkpoint stores it."""
    if name.endswith(".embedding_sum"):
        value = mx.random.normal(value.shape)  # the codebooks start at zero; give them entries
    elif name.endswith((".cluster_usage", ".initialized")):
        value = mx.ones(value.shape)
    elif value.ndim == 3:  # a convolution's: (out, kernel, in) in MLX
        # MLX's initial scale, 1 / fan-in, fades the signal to silence across Mimi's layers.
        value = mx.random.normal(value.shape) / math.sqrt(value.shape[1] * value.shape[2])
        value = (
            value.transpose(2, 0, 1) if name.endswith(".convtr.weight") else value.swapaxes(1, 2)
        )
    for pattern, torch_name in TORCH_NAMES:
        name = re.sub(pattern, torch_name, name)
    return name, value


def make_tiny_mlx_moshi(model_dir: Path, seed: int = 0) -> None:
    """Write config.json, random LM and Mimi weights and a tokenizer into `model_dir`."""
    model_dir.mkdir(parents=True, exist_ok=True)
    mx.random.seed(seed)
    tokenizer = train_tokenizer()
    (model_dir / "tokenizer.model").write_bytes(tokenizer)
    text_card = sentencepiece.SentencePieceProcessor(model_proto=tokenizer).get_piece_size()
    config = {
        **TINY_LM,
        "text_card": text_card,
        "mlx_mimi": TINY_MIMI,
        "moshi_name": "model.safetensors",
        "mimi_name": "mimi.safetensors",
        "tokenizer_name": "tokenizer.model",
    }
    lm = Lm(LmConfig.from_config_dict(config))
    lm.set_dtype(mx.bfloat16)
    lm.save_weights(str(model_dir / "model.safetensors"))
    mimi = Mimi(mimi_config(config))
    weights = dict(torch_tensor(name, value) for name, value in tree_flatten(mimi.parameters()))
    mx.save_safetensors(str(model_dir / "mimi.safetensors"), weights)
    (model_dir / "config.json").write_text(json.dumps(config, indent=1))
