"""Has the user finished their thought? Smart Turn v3.2 on the turn's audio.

Silence alone cannot tell "Turn on the… kitchen light" from "Turn on the kitchen
light.": people pause mid-thought for as long as they pause at the end. Smart Turn
(pipecat-ai's semantic end-of-turn model, BSD-2-Clause) hears the words' intonation
and grammar and gives the probability that the turn is complete. Its ONNX file
ships inside the `pipecat-ai` wheel, which `scripts/setup.sh` installs without its
dependencies; only the file is used, through the onnxruntime the server already
has. Its input is Whisper's log-mel spectrogram of the last 8 s (left-padded with
silence), computed here with faster-whisper's own feature extractor.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EMBEDDED, LimitsConfig, TurnEndConfig
from ..embedded_models import SMART_TURN, ModelMissingError
from ..workers import ModelWorker
from .description import ModelDescription

_LOGGER = logging.getLogger(__name__)

TURN_RATE = 16_000
WINDOW_SECONDS = 8
"""The model hears the last 8 s of the turn."""
_NORMALIZE_EPSILON = 1e-7


class SmartTurn:
    """The end-of-turn model, shared by every session; one judgement at a time, in its own
    worker thread (~40 ms on one core)."""

    def __init__(self, path: Path, description: ModelDescription, limits: LimitsConfig) -> None:
        self._path = path
        self.description = description
        self._worker = ModelWorker("turn-end", 1, limits.model_wait_s)
        self._session: Any = None
        self._features: Any = None

    async def load(self) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        def build() -> Any:
            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            return onnxruntime.InferenceSession(
                str(self._path), sess_options=options, providers=["CPUExecutionProvider"]
            )

        self._session = await self._worker.call(build)
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_SECONDS)

    async def complete_probability(self, audio: np.ndarray) -> float:
        """The probability that the turn in `audio` (mono float32 at 16 kHz, its speech and
        the silence after it) is complete."""
        return await self._worker.call(lambda: self._judge(audio))

    def _judge(self, audio: np.ndarray) -> float:
        if self._session is None:
            raise RuntimeError("the end-of-turn model is not loaded")
        window = WINDOW_SECONDS * TURN_RATE
        samples = np.asarray(audio[-window:], dtype=np.float32)
        samples = np.pad(samples, (window - len(samples), 0))
        samples = (samples - samples.mean()) / np.sqrt(samples.var() + _NORMALIZE_EPSILON)
        # Whisper's features of exactly 8 s: 800 frames of 80 mel bands.
        mel = self._features(samples, padding=0)[:, : window // self._features.hop_length]
        (probability,) = self._session.run(None, {"input_features": mel[np.newaxis]})[0][0]
        return float(probability)


def create_turn_end(config: TurnEndConfig, limits: LimitsConfig) -> SmartTurn | None:
    """The configured end-of-turn model, or None (with a warning) when the embedded one is
    not installed: the sessions then end turns on silence alone."""
    if config.model == EMBEDDED:
        try:
            path = SMART_TURN.path()
        except ModelMissingError as error:
            _LOGGER.warning(
                "No end-of-turn model: %s. Turns end after %s of silence alone, so a user "
                "who pauses mid-thought is answered too soon.",
                error,
                "sessions.silence_ms",
            )
            return None
        description = ModelDescription(
            name="smart-turn-v3.2",
            description="Smart Turn v3.2 (embedded, from pipecat-ai)",
            author=SMART_TURN.author,
            url=SMART_TURN.source_url,
            version=SMART_TURN.version(),
        )
    else:
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"turn_end.model: Smart Turn ONNX file {config.model!r} does not exist"
            )
        description = ModelDescription(
            name=path.name.removesuffix(".onnx"),
            description=f"Smart Turn {path.name}",
            author="Smart Turn model",
            url=str(path),
            version=None,
        )
    return SmartTurn(path, description, limits)
