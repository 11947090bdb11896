"""The asr program: buffer one utterance in any format, then transcribe it."""

from __future__ import annotations

import contextlib

import numpy as np
from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop

from ..audio_format import MonoConverter, PcmFormat
from ..protocol import WriteEvent
from ..stages.stt import STT_RATE, SpeechToText


class AudioTooLongError(ValueError):
    """An utterance longer than the configured maximum."""


class Utterance:
    """Audio of one asr request, converted to mono float32 at the STT rate as it arrives."""

    def __init__(self, source: PcmFormat, max_seconds: float) -> None:
        self._converter = MonoConverter(source, STT_RATE)
        self._max_samples = int(max_seconds * STT_RATE)
        self._parts: list[np.ndarray] = []
        self._samples = 0
        self.source = source

    def add(self, pcm: bytes) -> None:
        part = self._converter.convert(pcm)
        self._samples += len(part)
        if self._samples > self._max_samples:
            seconds = self._max_samples / STT_RATE
            raise AudioTooLongError(
                f"utterance longer than {seconds:.0f} s (limits.max_audio_seconds)"
            )
        self._parts.append(part)

    def audio(self) -> np.ndarray:
        self._parts.append(self._converter.convert(b"", last=True))
        return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.float32)


async def send_transcript(
    stt: SpeechToText,
    utterance: Utterance,
    language: str | None,
    write: WriteEvent,
) -> str:
    """Transcribe, streaming each decoded segment, then the whole transcript."""
    await write(TranscriptStart(language=language).event())
    pieces: list[str] = []
    async with contextlib.aclosing(stt.transcribe(utterance.audio(), language)) as segments:
        async for segment in segments:
            await write(TranscriptChunk(text=segment).event())
            pieces.append(segment)
    text = "".join(pieces).strip()
    await write(Transcript(text=text, language=language).event())
    await write(TranscriptStop().event())
    return text
