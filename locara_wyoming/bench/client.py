"""Requests to a Wyoming server as Home Assistant makes them, with arrival times.

Each event that comes back is stamped with `time.perf_counter()`, so callers can
measure time to first audio or first text on one clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, HandledStop, NotHandled
from wyoming.tts import Synthesize, SynthesizeVoice

from ..audio_format import PcmFormat

REPLY_TIMEOUT_S = 120.0


class ServerReplyError(RuntimeError):
    """The server answered with an `error` event or closed the connection."""


@dataclass(frozen=True)
class Stamped:
    at: float
    event: Event


@dataclass(frozen=True)
class ServerReply:
    sent_at: float
    events: list[Stamped]

    def of_type(self, is_type: Callable[[str], bool]) -> list[Stamped]:
        return [item for item in self.events if is_type(item.event.type)]

    def first_after_send(self, is_type: Callable[[str], bool]) -> float:
        """Seconds from the last request event to the first reply event of a type."""
        return self.of_type(is_type)[0].at - self.sent_at

    def audio(self) -> bytes:
        return b"".join(
            AudioChunk.from_event(i.event).audio for i in self.of_type(AudioChunk.is_type)
        )

    def audio_format(self) -> PcmFormat:
        start = AudioStart.from_event(self.of_type(AudioStart.is_type)[0].event)
        return PcmFormat(start.rate, start.width, start.channels)


async def exchange(
    uri: str,
    events: Sequence[Event],
    done: Callable[[str], bool],
    timeout_s: float = REPLY_TIMEOUT_S,
) -> ServerReply:
    """Send `events`, then collect every reply event up to one for which `done` is true."""
    async with AsyncClient.from_uri(uri) as client:
        for event in events:
            await client.write_event(event)
        sent_at = time.perf_counter()
        received: list[Stamped] = []
        async with asyncio.timeout(timeout_s):
            while True:
                event = await client.read_event()
                if event is None:
                    raise ServerReplyError("server closed the connection")
                received.append(Stamped(time.perf_counter(), event))
                if Error.is_type(event.type):
                    raise ServerReplyError(Error.from_event(event).text)
                if done(event.type):
                    return ServerReply(sent_at, received)


def audio_events(pcm: bytes, audio: PcmFormat, chunk_seconds: float = 0.1) -> list[Event]:
    step = max(audio.frame_bytes, int(audio.rate * chunk_seconds) * audio.frame_bytes)
    chunks = [
        AudioChunk(audio.rate, audio.width, audio.channels, pcm[offset : offset + step]).event()
        for offset in range(0, len(pcm), step)
    ]
    return [
        AudioStart(audio.rate, audio.width, audio.channels).event(),
        *chunks,
        AudioStop().event(),
    ]


async def transcribe(
    uri: str, pcm: bytes, audio: PcmFormat, language: str | None = None, streaming: bool = True
) -> ServerReply:
    """`streaming`: the reply ends with `transcript-stop` (ours; some send only `transcript`)."""
    request = [Transcribe(language=language).event(), *audio_events(pcm, audio)]
    last = "transcript-stop" if streaming else "transcript"
    return await exchange(uri, request, lambda t: t == last)


def transcript_text(reply: ServerReply) -> str:
    return Transcript.from_event(reply.of_type(Transcript.is_type)[0].event).text


async def synthesize(uri: str, text: str, voice: str | None = None) -> ServerReply:
    request = Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None)
    return await exchange(uri, [request.event()], AudioStop.is_type)


async def handle(
    uri: str, text: str, conversation_id: str | None, persona: str | None = None
) -> ServerReply:
    """`persona`: answered as that persona (`context.persona`), else as the default one."""
    context: dict[str, str] = {"conversation_id": conversation_id} if conversation_id else {}
    if persona is not None:
        context["persona"] = persona
    request = Transcript(text=text, context=context or None)
    return await exchange(uri, [request.event()], HandledStop.is_type)


def handled_text(reply: ServerReply) -> str:
    final = reply.of_type(lambda t: Handled.is_type(t) or NotHandled.is_type(t))[0].event
    return str(final.data.get("text") or "")
