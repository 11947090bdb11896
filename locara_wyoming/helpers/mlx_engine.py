"""Kyutai Moshi on MLX (`moshi_mlx`): Apple silicon, or a CPU through `mlx[cpu]`. One conversation.

A model directory is read the way moshi_mlx's own runners read a Hugging Face repo:
`config.json` (`LmConfig.from_config_dict`; without it, the 7B moshiko layout), the LM
weights in MLX layout (`model.safetensors`, or `model.q4.safetensors` /
`model.q8.safetensors`, quantized as the file name says), Mimi's PyTorch checkpoint and the
sentencepiece text tokenizer; `moshi_name`, `mimi_name` and `tokenizer_name` in config.json
rename them.

Mimi runs in MLX (`moshi_mlx.models.mimi`, as the library's TTS runner uses it), not in
rustymimi as `moshi_mlx.local` does: rustymimi's Mimi is fixed at full size, while the MLX one
takes a config, so a tiny test model (config.json's `mlx_mimi`, overrides to
`mimi_202407`) runs the same code as a real one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import sentencepiece
from mlx.nn.layers.quantized import quantize
from mlx.utils import tree_flatten
from moshi_mlx.models.generate import LmGen
from moshi_mlx.models.lm import Lm, LmConfig, config_v0_1
from moshi_mlx.models.mimi import Mimi, mimi_202407
from moshi_mlx.utils.sampling import Sampler

from .engine import Engine, FrameOutput, Persona

PAD_TOKENS = (0, 3)
"""Moshi's text stream: 0 is the end of padding, 3 padding; neither is text."""
MOSHI_NAMES = ("model.safetensors", "model.q8.safetensors", "model.q4.safetensors")
MIMI_NAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
TOKENIZER_NAME = "tokenizer_spm_32k_3.model"
MIMI_CODEBOOKS = 32
"""Codebooks in Mimi's checkpoint; Moshi reads the first 8 of each stream."""
GROUP_SIZES = {4: 32, 8: 64}
"""Quantization group size by bits, as moshi_mlx.local quantizes."""
MAX_STEPS = 4000
"""Frames in one conversation (5 min 20 s), moshi_mlx.local's default; the LM's rotating
KV cache holds 4096 steps."""


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def moshi_file(model_dir: Path, config: dict[str, Any]) -> Path:
    if "moshi_name" in config:
        return model_dir / str(config["moshi_name"])
    for name in MOSHI_NAMES:
        if (model_dir / name).exists():
            return model_dir / name
    raise FileNotFoundError(f"no LM weights ({', '.join(MOSHI_NAMES)}) in {model_dir}")


def load_lm(model_dir: Path, config: dict[str, Any]) -> Any:
    """The LM as moshi_mlx.local builds it: bfloat16, quantized when the file name says so."""
    path = moshi_file(model_dir, config)
    lm_config = LmConfig.from_config_dict(config) if config else config_v0_1()
    lm = Lm(lm_config)
    lm.set_dtype(mx.bfloat16)
    if bits := re.search(r"\.q(\d+)\.safetensors$", path.name):
        quantize(lm, bits=int(bits[1]), group_size=GROUP_SIZES[int(bits[1])])
    lm.load_weights(str(path), strict=True)
    return lm


def mimi_config(config: dict[str, Any]) -> Any:
    """Mimi's released config, with config.json's `mlx_mimi` overrides (a tiny model's)."""
    base = mimi_202407(MIMI_CODEBOOKS)
    overrides = dict(config.get("mlx_mimi", {}))
    seanet = dataclasses.replace(base.seanet, **overrides.pop("seanet", {}))
    transformer = dataclasses.replace(base.transformer, **overrides.pop("transformer", {}))
    return dataclasses.replace(base, seanet=seanet, transformer=transformer, **overrides)


def load_mimi(model_dir: Path, config: dict[str, Any]) -> Any:
    mimi = Mimi(mimi_config(config))
    mimi.load_pytorch_weights(str(model_dir / config.get("mimi_name", MIMI_NAME)), strict=True)
    return mimi


class MlxEngine(Engine):
    sample_rate = 24000
    frame_samples = 1920

    def __init__(self, model_dir: Path, slots: int = 1, max_steps: int = MAX_STEPS) -> None:
        if slots != 1:
            raise ValueError(f"moshi_mlx runs one conversation: slots must be 1, not {slots}")
        self.slots = 1
        self._max_steps = max_steps
        config = read_config(model_dir)
        self._lm = load_lm(model_dir, config)
        self._mimi = load_mimi(model_dir, config)
        tokenizer = model_dir / config.get("tokenizer_name", TOKENIZER_NAME)
        self._tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
        provider = self._lm.condition_provider  # as moshi_mlx.local_web conditions it
        self._condition = (
            None if provider is None else provider.condition_tensor("description", "very_good")
        )
        self._gen = self._start()
        self._warm_up()

    def _start(self) -> Any:
        """A fresh conversation on the loaded weights: empty caches and a new generator."""
        for cache in self._lm.transformer_cache:
            cache.reset()
        self._mimi.reset_all()
        return LmGen(
            model=self._lm,
            max_steps=self._max_steps,
            text_sampler=Sampler(),
            audio_sampler=Sampler(),
        )

    def _warm_up(self) -> None:
        """Run every kernel once, past the delays so that Mimi decodes too."""
        silence = np.zeros(self.frame_samples, dtype=np.float32)
        for _ in range(max(self._lm.cfg.audio_delays) + 2):
            self.step({0: silence})
        self._gen = self._start()

    def reset(self, slot: int, persona: Persona) -> int:
        if slot != 0:
            raise ValueError(f"no slot {slot}: moshi_mlx runs one conversation")
        self._gen = self._start()
        return 0  # Moshi takes no persona

    def text_piece(self, token: int) -> str:
        if token in PAD_TOKENS or self._tokenizer.is_control(token):
            return ""
        return str(self._tokenizer.id_to_piece(token)).replace("▁", " ")

    def step(self, frames: dict[int, np.ndarray]) -> dict[int, FrameOutput]:
        if set(frames) - {0}:
            raise ValueError(
                f"no slots {sorted(set(frames) - {0})}: moshi_mlx runs one conversation"
            )
        if 0 not in frames:
            return {}
        pcm = mx.array(np.asarray(frames[0], dtype=np.float32))[None, None]
        codes = self._mimi.encode_step(pcm)[:, : self._lm.cfg.other_codebooks, 0]
        text = self._gen.step(codes, ct=self._condition)
        audio = self._gen.last_audio_tokens()
        out = None if audio is None else np.array(self._mimi.decode_step(audio[:, :, None])[0, 0])
        return {0: FrameOutput(out, self.text_piece(int(text[0].item())))}


# A tiny random model with the real model's streams (16 codebooks, 8 for the model's voice,
# 2048 entries, moshiko's delays, 1920 samples a frame at 24 kHz) and small layers, for tests.
# It talks nonsense: random weights.

TINY_CORPUS = [
    "hello there how are you today",
    "the weather is fine thanks for asking",
    "turn on the kitchen lights please",
    "what time is it in the living room",
]
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


def tiny_tokenizer() -> bytes:
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TINY_CORPUS * 10), model_writer=model, vocab_size=32,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2,
    )  # fmt: skip
    return model.getvalue()


def make_tiny_model(model_dir: Path, seed: int = 0) -> None:
    """Write config.json, random LM and Mimi weights and a tokenizer into `model_dir`."""
    model_dir.mkdir(parents=True, exist_ok=True)
    mx.random.seed(seed)
    tokenizer = tiny_tokenizer()
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
