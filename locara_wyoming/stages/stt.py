"""Speech-to-text: faster-whisper in-process, or a remote Wyoming asr service.

In-process, Whisper runs on a window sized to the utterance (`whisper_window`), and on
faster-whisper's 30 s window when that one's result looks wrong or the audio is longer.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import Describe, Info

from ..audio_format import float_to_pcm16
from ..config import EMBEDDED, LimitsConfig, SttConfig
from ..embedded_models import WHISPER_TINY_EN
from ..workers import ModelWorker
from .description import ModelDescription
from .remote import RemoteServiceError, read_until, wyoming_connection

if TYPE_CHECKING:
    from .whisper_window import ShortWindowWhisper

_LOGGER = logging.getLogger(__name__)

STT_RATE = 16_000


class SpeechToText(ABC):
    """Transcribes mono float32 audio at `STT_RATE`, yielding text segments as decoded."""

    description: ModelDescription

    @abstractmethod
    async def load(self) -> None: ...

    @abstractmethod
    def transcribe(self, audio: np.ndarray, language: str | None) -> AsyncGenerator[str, None]: ...


class FasterWhisperStt(SpeechToText):
    def __init__(self, config: SttConfig, limits: LimitsConfig) -> None:
        self.config = config
        self._worker = ModelWorker("stt", config.concurrency, limits.model_wait_s)
        self._model: object | None = None
        self._short: ShortWindowWhisper | None = None
        if config.model == EMBEDDED:
            self._source = str(WHISPER_TINY_EN.path())
            self.description = ModelDescription(
                name="tiny.en",
                description=f"{WHISPER_TINY_EN.name} (embedded, int8)",
                author=WHISPER_TINY_EN.author,
                url=WHISPER_TINY_EN.source_url,
                version=WHISPER_TINY_EN.version(),
                languages=["en"],
            )
        else:
            self._source = config.model
            self.description = ModelDescription(
                name=Path(config.model).name,
                description=f"faster-whisper {config.model}",
                author="OpenAI (Whisper), SYSTRAN (faster-whisper)",
                url="https://github.com/SYSTRAN/faster-whisper",
                version=None,
                languages=[config.language],
            )

    async def load(self) -> None:
        # Imported here, as faster-whisper itself: the server's configuration and control
        # code import this module, and must import without the model libraries.
        from faster_whisper import WhisperModel

        from .whisper_window import ShortWindowWhisper

        def build() -> object:
            return WhisperModel(
                self._source,
                device=self.config.device,
                compute_type=self.config.compute_type,
                cpu_threads=self.config.threads,
                local_files_only=True,
            )

        self._model = await self._worker.call(build)
        if self.config.short_window:
            self._short = ShortWindowWhisper(
                self._model,
                self.config.window_floor_s,
                self.config.window_margin_s,
                self.config.beam_size,
            )
        languages = getattr(self._model, "supported_languages", None)
        if languages and self.config.model != EMBEDDED:
            self.description = ModelDescription(
                **{**self.description.__dict__, "languages": list(languages)}
            )

    def transcribe(self, audio: np.ndarray, language: str | None) -> AsyncGenerator[str, None]:
        model = self._model
        if model is None:
            raise RuntimeError("speech-to-text model is not loaded")
        if language not in self.description.languages:
            language = self.description.languages[0] if self.description.languages else None

        short = self._short

        def segments() -> Iterator[str]:
            if short is not None and language is not None:
                result = short.transcribe(audio, language)
                if result.refused is None:
                    yield result.text
                    return
                _LOGGER.info("Short window refused (%s): using the 30 s window", result.refused)
            decoded, _info = model.transcribe(  # type: ignore[attr-defined]
                audio,
                language=language,
                beam_size=self.config.beam_size,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            for segment in decoded:
                yield segment.text

        return self._worker.stream(segments)


class WyomingStt(SpeechToText):
    """Delegates to another Wyoming asr server (e.g. wyoming-faster-whisper on a GPU box)."""

    def __init__(self, config: SttConfig, limits: LimitsConfig) -> None:
        assert config.uri is not None
        self.uri = config.uri
        self._worker = ModelWorker(
            "stt-remote", config.concurrency, limits.model_wait_s, shares_cores=False
        )
        self.description = ModelDescription(
            name=self.uri,
            description=f"remote Wyoming asr at {self.uri}",
            author="remote",
            url=self.uri,
            version=None,
            languages=[config.language],
        )

    async def load(self) -> None:
        async with wyoming_connection(self.uri) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await read_until(client, Info.is_type))
        models = [m for program in info.asr for m in program.models]
        if not models:
            raise RemoteServiceError(f"{self.uri} offers no asr model")
        self.description = ModelDescription(
            name=models[0].name,
            description=f"{models[0].description or models[0].name} via {self.uri}",
            author=models[0].attribution.name,
            url=models[0].attribution.url,
            version=models[0].version,
            languages=models[0].languages,
        )

    async def transcribe(
        self, audio: np.ndarray, language: str | None
    ) -> AsyncGenerator[str, None]:
        async with self._worker.slot(), wyoming_connection(self.uri) as client:
            await client.write_event(Transcribe(language=language).event())
            await client.write_event(AudioStart(rate=STT_RATE, width=2, channels=1).event())
            pcm = float_to_pcm16(audio)
            second = STT_RATE * 2
            for start in range(0, len(pcm), second):
                chunk = AudioChunk(
                    rate=STT_RATE, width=2, channels=1, audio=pcm[start : start + second]
                )
                await client.write_event(chunk.event())
            await client.write_event(AudioStop().event())
            transcript = Transcript.from_event(await read_until(client, Transcript.is_type))
        yield transcript.text


def create_stt(config: SttConfig, limits: LimitsConfig) -> SpeechToText:
    if config.uri is not None:
        return WyomingStt(config, limits)
    return FasterWhisperStt(config, limits)
