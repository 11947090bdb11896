"""The tts program: speak a text, or a text stream sentence by sentence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from sentence_stream import SentenceBoundaryDetector
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event

from ..stages.tts import TextToSpeech

SAMPLES_PER_CHUNK = 1024

Write = Callable[[Event], Awaitable[None]]


async def speak(
    tts: TextToSpeech, text: str, voice: str, speaker: str | None, write: Write
) -> None:
    """One audio stream (`audio-start`, chunks, `audio-stop`) for the whole text."""
    started = False
    timestamp_ms = 0
    audio_format = tts.voices[voice].audio
    async with contextlib.aclosing(tts.synthesize(text, voice, speaker)) as blocks:
        async for block in blocks:
            if not started:
                audio_format = tts.voices[voice].audio  # a remote voice learns its format here
                start = AudioStart(audio_format.rate, audio_format.width, audio_format.channels)
                await write(start.event())
                started = True
            step = SAMPLES_PER_CHUNK * audio_format.frame_bytes
            for offset in range(0, len(block), step):
                piece = block[offset : offset + step]
                chunk = AudioChunk(
                    rate=audio_format.rate,
                    width=audio_format.width,
                    channels=audio_format.channels,
                    audio=piece,
                    timestamp=timestamp_ms,
                )
                await write(chunk.event())
                timestamp_ms += 1000 * len(piece) // audio_format.bytes_per_second
    if started:
        await write(AudioStop(timestamp=timestamp_ms).event())


class StreamingSynthesis:
    """`synthesize-start` … `synthesize-stop`: each sentence is spoken once it is complete.

    Text arrives on the connection's reader while a separate task speaks the finished
    sentences in order, so reading never waits for synthesis.
    """

    def __init__(
        self, tts: TextToSpeech, voice: str, speaker: str | None, write: Write, max_chars: int
    ) -> None:
        self._tts = tts
        self._voice = voice
        self._speaker = speaker
        self._write = write
        self._max_chars = max_chars
        self._received_chars = 0
        self._detector = SentenceBoundaryDetector()
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._speaker_task = asyncio.create_task(self._speak_sentences(), name="tts stream")

    def add_text(self, text: str) -> None:
        self._received_chars += len(text)
        if self._received_chars > self._max_chars:
            raise ValueError(f"streamed text longer than {self._max_chars} characters")
        for sentence in self._detector.add_chunk(text):
            self._sentences.put_nowait(sentence)

    async def finish(self) -> None:
        """Speak what is left and wait until every sentence has been sent."""
        remainder = self._detector.finish()
        if remainder.strip():
            self._sentences.put_nowait(remainder)
        self._sentences.put_nowait(None)
        await self._speaker_task

    def cancel(self) -> None:
        self._speaker_task.cancel()

    async def _speak_sentences(self) -> None:
        while (sentence := await self._sentences.get()) is not None:
            if sentence.strip():
                await speak(self._tts, sentence, self._voice, self._speaker, self._write)
