"""NVIDIA PersonaPlex: Moshi conditioned on a persona's text prompt and voice prompt.

PersonaPlex ships its own package named `moshi`, so it runs in an engine process
of its own environment. Its generator takes the prompts at a conversation's start
(`load_voice_prompt`, `text_prompt_tokens`, `step_system_prompts`); everything
else is Moshi's streaming loop, shared with `TorchMoshiEngine`. It serves one
conversation at a time, as PersonaPlex's own server does.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from .engine import Persona
from .torch_engine import TorchMoshiEngine

SYSTEM_TAG = "<system>"
VOICES_ARCHIVE = "voices.tgz"
PROMPT_API = ("load_voice_prompt", "load_voice_prompt_embeddings", "step_system_prompts")


class PersonaPlexEngine(TorchMoshiEngine):
    def __init__(self, model_dir: Path, slots: int, device: str = "auto", threads: int = 0):
        if slots != 1:
            raise ValueError("PersonaPlex serves one conversation per helper: max_sessions = 1")
        self._model_dir = model_dir
        super().__init__(model_dir, slots, device, threads)

    def _generator(self, info: Any) -> Any:
        from moshi.models import lm

        generator: Any = lm.LMGen  # PersonaPlex's, whose constructor differs from Kyutai's
        if not all(hasattr(generator, name) for name in PROMPT_API):
            raise RuntimeError(
                "the `moshi` package in this environment is Kyutai's, not PersonaPlex's: "
                "install PersonaPlex's moshi into the helper's environment (models.python)"
            )
        frame_rate = self._mimi.frame_rate
        return generator(
            self._lm,
            audio_silence_frame_cnt=int(0.5 * frame_rate),
            sample_rate=self._mimi.sample_rate,
            device=self.device,
            frame_rate=frame_rate,
            **info.lm_gen_config,
        )

    def voice_prompt(self, name: str) -> Path:
        """A path as given, else a file among the model's voices (unpacked on first use)."""
        path = Path(name).expanduser()
        if path.is_absolute():
            return path
        voices = self._model_dir / "voices"
        archive = self._model_dir / VOICES_ARCHIVE
        if not voices.exists() and archive.exists():
            with tarfile.open(archive) as tar:
                tar.extractall(self._model_dir, filter="data")
        return voices / name

    def reset(self, slot: int, persona: Persona) -> int:
        if persona.voice_prompt:
            path = self.voice_prompt(persona.voice_prompt)
            if not path.exists():
                raise FileNotFoundError(f"voice prompt {path} does not exist")
            if path.suffix == ".pt":
                self._gen.load_voice_prompt_embeddings(str(path))
            else:
                self._gen.load_voice_prompt(str(path))
        text = persona.text_prompt.strip()
        tokens = self._tokenizer.encode(f"{SYSTEM_TAG} {text} {SYSTEM_TAG}") if text else None
        self._gen.text_prompt_tokens = tokens
        self._mimi.reset_streaming()
        self._gen.reset_streaming()
        self._gen.step_system_prompts(self._mimi)
        self._mimi.reset_streaming()
        return len(tokens or [])
