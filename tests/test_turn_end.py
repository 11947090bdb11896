"""The end-of-turn model on real speech: finished thoughts against unfinished ones."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from locara_wyoming.config import LimitsConfig, TurnEndConfig
from locara_wyoming.embedded_models import EmbeddedModel
from locara_wyoming.stages import turn_end
from locara_wyoming.stages.turn_end import SmartTurn, create_turn_end

from .support.speech import Speech

TRAILING_SILENCE = np.zeros(16 * 96, np.float32)  # where the session asks: 96 ms into a pause


@pytest.fixture(scope="module")
async def model() -> SmartTurn:
    loaded = create_turn_end(TurnEndConfig(), LimitsConfig())
    assert loaded is not None, "the embedded Smart Turn model is not installed"
    await loaded.load()
    return loaded


def voiced(speech: Speech, text: str) -> np.ndarray:
    audio = speech.at_16k(text)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return np.concatenate([audio[: loud[-1] + 1], TRAILING_SILENCE])


# Piper's even prosody misleads the model on some sentences ("Turn on the kitchen light."
# sounds unfinished to it); these are ones it hears as a person would.
FINISHED = [
    "What is the weather like today?",
    "Set a timer for ten minutes.",
    "Hello, how are you today?",
    "How do I make a cup of tea?",
]
UNFINISHED = [
    "Turn on the",
    "Could you tell me about the",
    "I would like to",
    "What is the weather like in",
    "Could you tell me, um,",
]


@pytest.mark.models
async def test_finished_thoughts_are_judged_complete(model: SmartTurn, speech: Speech) -> None:
    scores = {text: await model.complete_probability(voiced(speech, text)) for text in FINISHED}
    assert all(score >= 0.5 for score in scores.values()), scores


@pytest.mark.models
async def test_unfinished_thoughts_are_judged_incomplete(model: SmartTurn, speech: Speech) -> None:
    scores = {text: await model.complete_probability(voiced(speech, text)) for text in UNFINISHED}
    assert all(score < 0.5 for score in scores.values()), scores


@pytest.mark.models
async def test_a_long_turn_is_judged_on_its_last_eight_seconds(
    model: SmartTurn, speech: Speech
) -> None:
    """More than eight seconds of speech: the model takes any length and hears its end."""
    opening = speech.at_16k(
        "I went to the market this morning and bought apples, pears and plums. "
        "Then I walked home by the river. " * 2
    )
    assert len(opening) > 10 * 16_000
    unfinished = await model.complete_probability(
        np.concatenate([opening, voiced(speech, "And then I wanted to")])
    )
    finished = await model.complete_probability(
        np.concatenate([opening, voiced(speech, "What should I cook for dinner tonight?")])
    )
    assert unfinished < 0.5 <= finished


def test_a_missing_embedded_model_means_silence_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    missing = EmbeddedModel(
        name="Smart Turn v3.2",
        package="locara_no_such_package",
        distribution="pipecat-ai",
        relative_path="smart-turn.onnx",
        source_url="",
        author="",
        installed_without_dependencies=True,
    )
    monkeypatch.setattr(turn_end, "SMART_TURN", missing)
    with caplog.at_level(logging.WARNING):
        assert create_turn_end(TurnEndConfig(), LimitsConfig()) is None
    assert "pip install --no-deps pipecat-ai" in caplog.text
    assert "sessions.silence_ms" in caplog.text


def test_a_model_file_that_does_not_exist_is_named() -> None:
    with pytest.raises(FileNotFoundError, match=r"turn_end.model: .*'/nowhere/turn.onnx'"):
        create_turn_end(TurnEndConfig(model="/nowhere/turn.onnx"), LimitsConfig())
