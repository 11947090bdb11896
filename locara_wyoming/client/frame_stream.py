"""Stream a microphone's worth of audio into a session at a steady pace and record
every event that comes back: the probe of `bench moshi` and of the end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import HandledChunk
from wyoming.pipeline import PipelineStage, RunPipeline

from ..audio_format import float_to_pcm16
from ..protocol.session import REQUEST_KEY, SessionRequest, SessionStarted


class SessionRefusedError(RuntimeError):
    """The server answered the session request with an error; `code` says which."""

    def __init__(self, code: str | None, text: str) -> None:
        super().__init__(text)
        self.code = code


@dataclass
class StreamRecord:
    started: SessionStarted
    chunk_sizes: Counter[int] = field(default_factory=Counter)
    """Reply audio chunks, by bytes."""
    audio_formats: set[tuple[int, int, int]] = field(default_factory=set)
    audio_bytes: int = 0
    texts: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    chunks_after_error: int = 0
    """Reply audio chunks that came after the first error: audio flowing again."""


async def request_session(client: AsyncClient, request: SessionRequest) -> SessionStarted:
    run = RunPipeline(PipelineStage.ASR, PipelineStage.TTS, restart_on_end=True).event()
    run.data[REQUEST_KEY] = request.to_dict()
    await client.write_event(run)
    while (event := await client.read_event()) is not None:
        if Error.is_type(event.type):
            error = Error.from_event(event)
            raise SessionRefusedError(error.code, error.text)
        if SessionStarted.is_type(event.type):
            return SessionStarted.from_event(event)
    raise ConnectionError("the server closed the connection")


class FrameStream:
    """One session: `audio` goes out in `chunk_ms` chunks, one every `chunk_ms / speed`."""

    def __init__(self, uri: str, name: str, chunk_ms: float = 80.0, speed: float = 1.0) -> None:
        self.uri = uri
        self.name = name
        self.chunk_ms = chunk_ms
        self.speed = speed

    async def run(self, audio: np.ndarray, tail_s: float = 0.5) -> StreamRecord:
        """Stream `audio` (float32 at the session's input rate), then wait `tail_s`."""
        async with AsyncClient.from_uri(self.uri) as client:
            started = await request_session(client, SessionRequest(self.name))
            record = StreamRecord(started)
            receiving = asyncio.create_task(self._receive(client, record))
            try:
                await self._send(client, audio, started.input.rate)
                await asyncio.sleep(tail_s)
                await client.write_event(AudioStop().event())
            finally:
                receiving.cancel()
                await asyncio.gather(receiving, return_exceptions=True)
        return record

    async def _send(self, client: AsyncClient, audio: np.ndarray, rate: int) -> None:
        await client.write_event(AudioStart(rate, 2, 1).event())
        step = int(rate * self.chunk_ms / 1000)
        interval = self.chunk_ms / 1000 / self.speed
        next_at = time.monotonic()
        for start in range(0, len(audio), step):
            pcm = float_to_pcm16(audio[start : start + step])
            await client.write_event(AudioChunk(rate, 2, 1, pcm).event())
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    @staticmethod
    async def _receive(client: AsyncClient, record: StreamRecord) -> None:
        while (event := await client.read_event()) is not None:
            _record(event, record)


def _record(event: Event, record: StreamRecord) -> None:
    if AudioChunk.is_type(event.type):
        chunk = AudioChunk.from_event(event)
        record.chunk_sizes[len(chunk.audio)] += 1
        record.audio_formats.add((chunk.rate, chunk.width, chunk.channels))
        record.audio_bytes += len(chunk.audio)
        if record.errors:
            record.chunks_after_error += 1
    elif AudioStart.is_type(event.type):
        record.replies.append(str(event.data.get("reply_id")))
    elif HandledChunk.is_type(event.type):
        record.texts.append(HandledChunk.from_event(event).text)
    elif Error.is_type(event.type):
        record.errors.append(f"{Error.from_event(event).code}: {Error.from_event(event).text}")
