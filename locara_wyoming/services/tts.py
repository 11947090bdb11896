"""The tts program: speak a text, or a text stream, a short first piece then sentences.

Both cut the text with the voice replies' `SpeechChunker`: the first piece is a
clause or a few words, so that its audio comes at once; then whole sentences.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStopped,
    SynthesizeVoice,
)

from ..backends.pipeline.clauses import SpeechChunker, split_for_speech
from ..errors import OutOfOrder, TooLarge
from ..protocol import WriteEvent
from ..protocol.parsing import parse_event
from ..stages.tts import TextToSpeech
from .program import Handler, ProgramLink

SAMPLES_PER_CHUNK = 1024


async def speak(
    tts: TextToSpeech, text: str, voice: str, speaker: str | None, write: WriteEvent
) -> None:
    """One audio stream for the whole text, its first piece synthesized on its own."""
    await speak_pieces(tts, split_for_speech(text), voice, speaker, write)


async def speak_pieces(
    tts: TextToSpeech, pieces: Iterable[str], voice: str, speaker: str | None, write: WriteEvent
) -> None:
    """One audio stream (`audio-start`, chunks, `audio-stop`) for `pieces`, one after another."""
    started = False
    timestamp_ms = 0
    audio_format = tts.voices[voice].audio
    for text in pieces:
        async with contextlib.aclosing(tts.synthesize(text, voice, speaker)) as blocks:
            async for block in blocks:
                if not started:
                    audio_format = tts.voices[voice].audio  # a remote voice learns it here
                    start = AudioStart(audio_format.rate, audio_format.width, audio_format.channels)
                    await write(start.event())
                    started = True
                step = SAMPLES_PER_CHUNK * audio_format.frame_bytes
                for offset in range(0, len(block), step):
                    audio = block[offset : offset + step]
                    chunk = AudioChunk(
                        rate=audio_format.rate,
                        width=audio_format.width,
                        channels=audio_format.channels,
                        audio=audio,
                        timestamp=timestamp_ms,
                    )
                    await write(chunk.event())
                    timestamp_ms += 1000 * len(audio) // audio_format.bytes_per_second
    if started:
        await write(AudioStop(timestamp=timestamp_ms).event())


class StreamingSynthesis:
    """`synthesize-start` … `synthesize-stop`: each piece is spoken once it is complete.

    Text arrives on the connection's reader while a separate task speaks the finished
    pieces in order, so reading never waits for synthesis. Each piece is its own audio
    stream, as wyoming-piper sends one per sentence.
    """

    def __init__(
        self, tts: TextToSpeech, voice: str, speaker: str | None, write: WriteEvent, max_chars: int
    ) -> None:
        self._tts = tts
        self._voice = voice
        self._speaker = speaker
        self._write = write
        self._max_chars = max_chars
        self._received_chars = 0
        self._chunker = SpeechChunker()
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._speaker_task = asyncio.create_task(self._speak_queued(), name="tts stream")

    def add_text(self, text: str) -> None:
        self._received_chars += len(text)
        if self._received_chars > self._max_chars:
            raise TooLarge(f"streamed text longer than {self._max_chars} characters")
        for piece in self._chunker.add(text):
            self._pieces.put_nowait(piece)

    async def finish(self) -> None:
        """Speak what is left and wait until every piece has been sent."""
        if rest := self._chunker.finish():
            self._pieces.put_nowait(rest)
        self._pieces.put_nowait(None)
        await self._speaker_task

    def cancel(self) -> None:
        self._speaker_task.cancel()

    async def _speak_queued(self) -> None:
        while (piece := await self._pieces.get()) is not None:
            await speak_pieces(self._tts, [piece], self._voice, self._speaker, self._write)


class TtsProgram:
    """`synthesize`, and the streaming `synthesize-start` … `synthesize-stop`."""

    def __init__(self, link: ProgramLink) -> None:
        self._link = link
        self._stream: StreamingSynthesis | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            "synthesize": self._synthesize,
            "synthesize-start": self._start_stream,
            "synthesize-chunk": self._stream_text,
            "synthesize-stop": self._finish_stream,
        }

    def close(self) -> None:
        if self._stream is not None:
            self._stream.cancel()

    def _voice(self, voice: SynthesizeVoice | None) -> tuple[str, str | None]:
        tts = self._link.context.stages.tts
        if voice is None:
            return tts.default_voice, None
        return tts.resolve_voice(voice.name, voice.language), voice.speaker

    async def _synthesize(self, event: Event) -> None:
        if self._stream is not None:  # during a stream it is the backwards-compatible copy
            return
        request = parse_event(Synthesize, event)
        self._link.check_length(request.text)
        voice, speaker = self._voice(request.voice)
        tts, write = self._link.context.stages.tts, self._link.write
        self._link.enqueue(lambda: speak(tts, request.text, voice, speaker, write))

    async def _start_stream(self, event: Event) -> None:
        if self._stream is not None:
            raise OutOfOrder("synthesize-start while a stream is open")
        voice, speaker = self._voice(parse_event(SynthesizeStart, event).voice)
        context = self._link.context
        self._stream = StreamingSynthesis(
            context.stages.tts,
            voice,
            speaker,
            self._link.write,
            context.config.limits.max_text_chars,
        )

    async def _stream_text(self, event: Event) -> None:
        if self._stream is None:
            raise OutOfOrder("synthesize-chunk before synthesize-start")
        text = parse_event(SynthesizeChunk, event).text
        self._link.check_length(text)
        self._stream.add_text(text)

    async def _finish_stream(self, event: Event) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            raise OutOfOrder("synthesize-stop before synthesize-start")
        write = self._link.write

        async def finish() -> None:
            await stream.finish()
            await write(SynthesizeStopped().event())

        self._link.enqueue(finish)
