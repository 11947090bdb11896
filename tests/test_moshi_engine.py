"""The PyTorch Moshi engine on a tiny random-weight model built with the real library:
frames of the right size, slots that stay independent in a batch, resets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from locara_wyoming.engines.engine import FrameOutput, Persona
from locara_wyoming.engines.tiny_moshi import make_tiny_moshi
from locara_wyoming.engines.torch_engine import TorchMoshiEngine

pytestmark = pytest.mark.models

FRAMES = 24


@pytest.fixture(scope="module")
def greedy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_moshi(tmp_path_factory.mktemp("tiny-moshi"), greedy=True)


def _noise(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(1920) * 0.1).astype(np.float32) for _ in range(FRAMES)]


def _same(a: list[FrameOutput], b: list[FrameOutput]) -> bool:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if x.text != y.text or (x.pcm is None) != (y.pcm is None):
            return False
        if x.pcm is not None and y.pcm is not None and not np.allclose(x.pcm, y.pcm, atol=1e-4):
            return False
    return True


def test_frames_and_text(greedy_model: Path) -> None:
    engine = TorchMoshiEngine(greedy_model, slots=1, threads=1)
    assert (engine.sample_rate, engine.frame_samples) == (24000, 1920)
    outputs = [engine.step({0: frame})[0] for frame in _noise(1)]
    audio = [o.pcm for o in outputs if o.pcm is not None]
    # The model's delays hold back the first frame's audio; every later frame has some.
    assert len(audio) == FRAMES - 1 and outputs[0].pcm is None
    assert all(a.shape == (1920,) and a.dtype == np.float32 and np.isfinite(a).all() for a in audio)
    assert any(o.text for o in outputs)


def test_batched_slots_are_independent_and_reset(greedy_model: Path) -> None:
    alone = TorchMoshiEngine(greedy_model, slots=1, threads=1)
    reference = [alone.step({0: frame})[0] for frame in _noise(1)]

    batched = TorchMoshiEngine(greedy_model, slots=2, threads=1)
    other = _noise(2)
    mine: list[FrameOutput] = []
    for index, frame in enumerate(_noise(1)):
        frames = {0: frame}
        if index % 3:  # the other room's frames come at other times: it sits some steps out
            frames[1] = other[index]
        mine.append(batched.step(frames)[0])
    assert _same(reference, mine)

    # A new conversation in slot 0, while slot 1 goes on, starts from nothing.
    batched.reset(0, Persona())
    again = [batched.step({0: frame, 1: frame})[0] for frame in _noise(1)]
    assert _same(reference, again)
    # Without the reset, slot 0 would have gone on from its history.
    continued = [batched.step({0: frame})[0] for frame in _noise(1)]
    assert not _same(reference, continued)
