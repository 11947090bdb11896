"""The asr program: buffer one utterance in any format, then transcribe it."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import Event

from ..audio_format import MonoConverter, PcmFormat
from ..errors import BadAudioFormat, OutOfOrder, TooLarge
from ..protocol import WriteEvent
from ..protocol.parsing import parse_event
from ..stages.stt import STT_RATE, SpeechToText
from .program import Handler, ProgramLink

_LOGGER = logging.getLogger(__name__)


class AudioTooLongError(TooLarge):
    """An utterance longer than the configured maximum."""


class BufferedUtterance:
    """Audio of one asr request, converted to mono float32 at the STT rate as it arrives."""

    def __init__(self, source: PcmFormat, max_seconds: float) -> None:
        self._converter = MonoConverter(source, STT_RATE)
        self._max_seconds = max_seconds
        self._max_bytes = int(max_seconds * source.bytes_per_second)
        self._parts: list[np.ndarray] = []
        self._bytes = 0
        self.source = source

    def add(self, pcm: bytes) -> None:
        # Weighed before it is converted, on the loop: 1 MiB declared as 1000 Hz audio
        # is 17 minutes, and took a quarter of a second to convert before it was refused.
        self._bytes += len(pcm)
        if self._bytes > self._max_bytes:
            raise AudioTooLongError(
                f"utterance longer than {self._max_seconds:.0f} s (limits.max_audio_seconds)"
            )
        self._parts.append(self._converter.convert(pcm))

    def audio(self) -> np.ndarray:
        self._parts.append(self._converter.convert(b"", last=True))
        return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.float32)


async def send_transcript(
    stt: SpeechToText,
    utterance: BufferedUtterance,
    language: str | None,
    write: WriteEvent,
) -> None:
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
    _LOGGER.debug("transcript %r", text)


class AsrProgram:
    """`transcribe`, then one utterance (`audio-start`, chunks, `audio-stop`) at a time."""

    def __init__(self, link: ProgramLink) -> None:
        self._link = link
        self._utterance: BufferedUtterance | None = None
        self._language: str | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            "transcribe": self._transcribe_next,
            "audio-start": self._start,
            "audio-chunk": self._add,
            "audio-stop": self._finish,
        }

    async def _transcribe_next(self, event: Event) -> None:
        self._language = parse_event(Transcribe, event).language

    async def _start(self, event: Event) -> None:
        start = parse_event(AudioStart, event, BadAudioFormat)
        self._utterance = None  # an audio-start in a format the server cannot use loses it
        source = PcmFormat(start.rate, start.width, start.channels)
        limit = self._link.context.config.limits.max_audio_seconds
        self._utterance = BufferedUtterance(source, limit)

    async def _add(self, event: Event) -> None:
        if self._utterance is None:
            raise OutOfOrder("audio-chunk before audio-start")
        chunk = parse_event(AudioChunk, event, BadAudioFormat)
        if PcmFormat(chunk.rate, chunk.width, chunk.channels) != self._utterance.source:
            raise BadAudioFormat("audio-chunk format differs from its audio-start")
        try:
            self._utterance.add(chunk.audio)
        except AudioTooLongError:
            self._utterance = None
            raise

    async def _finish(self, event: Event) -> None:
        utterance, self._utterance = self._utterance, None
        if utterance is None:
            raise OutOfOrder("audio-stop before audio-start")
        context = self._link.context
        language = self._language or context.config.stt.language
        stt = context.stages.stt
        self._link.enqueue(lambda: send_transcript(stt, utterance, language, self._link.write))
