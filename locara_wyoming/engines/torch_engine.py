"""Kyutai Moshi on PyTorch (CUDA or CPU), several conversations batched on one model.

Each conversation owns one slot of the batch. A step runs the slots that have a
frame ready and leaves the others' streaming state untouched (the library's
execution mask); a new conversation resets only its own slot. Tested: a slot's
output is the same, frame for frame, whether it runs alone or beside another
(tests/test_moshi_engine.py).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Engine, FrameOutput, Persona
from .tiny_text import text_piece

os.environ.setdefault("NO_TORCH_COMPILE", "1")  # compiling costs minutes at start on a CPU

import torch
from moshi.models import loaders
from moshi.models.lm import LMGen

_LOGGER = logging.getLogger(__name__)

WARM_UP_FRAMES = 4


def checkpoint(model_dir: Path) -> Any:
    """The library's description of a model directory: config.json (when there is one,
    else the original 7B layout), the LM and Mimi weights and the text tokenizer."""
    config_path = model_dir / "config.json"
    if not config_path.exists():
        return loaders.CheckpointInfo(
            model_dir / loaders.MOSHI_NAME,
            model_dir / loaders.MIMI_NAME,
            model_dir / loaders.TEXT_TOKENIZER_NAME,
        )
    raw = json.loads(config_path.read_text())
    mimi_config = raw.get("mimi_config_name")
    return loaders.CheckpointInfo.from_hf_repo(
        str(model_dir),
        moshi_weights=model_dir / raw.get("moshi_name", loaders.MOSHI_NAME),
        mimi_weights=model_dir / raw.get("mimi_name", loaders.MIMI_NAME),
        tokenizer=model_dir / raw.get("tokenizer_name", loaders.TEXT_TOKENIZER_NAME),
        config_path=config_path,
        mimi_config_path=model_dir / mimi_config if mimi_config else None,
    )


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class TorchMoshiEngine(Engine):
    def __init__(self, model_dir: Path, slots: int, device: str = "auto", threads: int = 0):
        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        # bfloat16 is the weights' own type and fast on a GPU; a CPU computes float32 faster.
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        info = checkpoint(model_dir)
        self._mimi = info.get_mimi(device=self.device)
        self._lm = info.get_moshi(device=self.device, dtype=dtype)
        self._tokenizer = info.get_text_tokenizer()
        self._gen = self._generator(info)
        self.sample_rate = int(self._mimi.sample_rate)
        self.frame_samples = int(self._mimi.frame_size)
        self.slots = slots
        self._mimi.streaming_forever(slots)
        self._gen.streaming_forever(slots)
        self._warm_up()

    def _generator(self, info: Any) -> Any:
        return LMGen(self._lm, support_out_of_sync=True, **info.lm_gen_config)

    def _warm_up(self) -> None:
        silence = np.zeros(self.frame_samples, dtype=np.float32)
        for _ in range(WARM_UP_FRAMES):
            self.step(dict.fromkeys(range(self.slots), silence))
        self._reset(torch.ones(self.slots, dtype=torch.bool, device=self.device))

    def _mask(self, slots: list[int] | set[int]) -> torch.Tensor:
        mask = torch.zeros(self.slots, dtype=torch.bool, device=self.device)
        mask[list(slots)] = True
        return mask

    @torch.inference_mode()
    def _reset(self, mask: torch.Tensor) -> None:
        self._mimi.reset_streaming(mask)
        self._gen.reset_streaming(mask)

    def reset(self, slot: int, persona: Persona) -> int:
        self._reset(self._mask([slot]))
        return 0  # Moshi takes no persona

    @torch.inference_mode()
    def step(self, frames: dict[int, np.ndarray]) -> dict[int, FrameOutput]:
        ready = self._mask(set(frames))
        pcm = torch.zeros(self.slots, 1, self.frame_samples, device=self.device)
        for slot, frame in frames.items():
            pcm[slot, 0] = torch.from_numpy(frame)
        self._mimi.set_exec_mask(ready)
        self._gen.set_exec_mask(ready)
        tokens = self._gen.step(self._mimi.encode(pcm))
        if tokens is None:  # a generator that returns nothing while its delays fill
            return {slot: FrameOutput(None, "") for slot in frames}
        # A slot's audio tokens are not generated until its delays have filled.
        generated = ready & (tokens[:, 1:] >= 0).all(dim=2).all(dim=1)
        audio: np.ndarray | None = None
        if bool(generated.any()):
            self._mimi.set_exec_mask(generated)
            audio = self._mimi.decode(tokens[:, 1:].clamp(min=0)).float().cpu().numpy()
        text = tokens[:, 0, 0].tolist()
        return {
            slot: FrameOutput(
                audio[slot, 0].copy() if audio is not None and generated[slot] else None,
                text_piece(self._tokenizer, int(text[slot])),
            )
            for slot in frames
        }
