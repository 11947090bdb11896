"""The wake word, with microWakeWord through pymicro-wakeword (the models ship in its wheel)."""

from __future__ import annotations

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model


class WakeWordDetector:
    def __init__(self, name: str) -> None:
        self.name = name
        self._model = MicroWakeWord.from_builtin(Model(name))
        self._features = MicroWakeWordFeatures()

    def process(self, chunk: bytes) -> bool:
        """Whether the wake word ended in this chunk of 16 kHz mono 16-bit audio."""
        detected = False
        for features in self._features.process_streaming(chunk):
            detected = bool(self._model.process_streaming(features)) or detected
        return detected

    def reset(self) -> None:
        """Forget what was heard, so that one utterance is not detected twice."""
        self._model.reset()
        self._features = MicroWakeWordFeatures()
