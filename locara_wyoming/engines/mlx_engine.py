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
import json
import logging
import re
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import sentencepiece
from mlx.nn.layers.quantized import quantize
from moshi_mlx.models.generate import LmGen
from moshi_mlx.models.lm import Lm, LmConfig, config_v0_1
from moshi_mlx.models.mimi import Mimi, mimi_202407
from moshi_mlx.utils.sampling import Sampler

from .engine import Engine, FrameOutput, Persona
from .tiny_text import text_piece

_LOGGER = logging.getLogger(__name__)

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
        self._steps = 0
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

    def step(self, frames: dict[int, np.ndarray]) -> dict[int, FrameOutput]:
        if set(frames) - {0}:
            raise ValueError(
                f"no slots {sorted(set(frames) - {0})}: moshi_mlx runs one conversation"
            )
        if 0 not in frames:
            return {}
        pcm = mx.array(np.asarray(frames[0], dtype=np.float32))[None, None]
        codes = self._mimi.encode_step(pcm)[:, : self._lm.cfg.other_codebooks, 0]
        self._steps += 1
        if self._steps > self._max_steps:  # the model's context is full: begin again
            _LOGGER.info("conversation reached %d frames: starting a new one", self._max_steps)
            self._gen = self._start()
            self._steps = 1
        text = self._gen.step(codes, ct=self._condition)
        audio = self._gen.last_audio_tokens()
        out = None if audio is None else np.array(self._mimi.decode_step(audio[:, :, None])[0, 0])
        return {0: FrameOutput(out, text_piece(self._tokenizer, int(text[0].item())))}
