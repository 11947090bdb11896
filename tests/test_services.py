"""asr, tts and handle over real TCP with the embedded models."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import soxr
from faster_whisper import WhisperModel
from wyoming.asr import Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.handle import HandledChunk, HandledStart
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from locara_wyoming.audio_format import PcmFormat, pcm_to_float
from locara_wyoming.bench import client as wy
from locara_wyoming.bench.server_process import ServerProcess

from .support.speech import Speech, wer, word_errors

pytestmark = pytest.mark.models


async def test_info_is_complete_and_truthful(server: ServerProcess) -> None:
    async with AsyncClient.from_uri(server.uri) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
    assert event is not None and Info.is_type(event.type)
    info = Info.from_event(event)
    assert info.satellite is None
    assert [p.name for p in info.asr] == ["locara-asr"]
    assert info.asr[0].supports_transcript_streaming
    assert info.asr[0].models[0].name == "tiny.en"
    assert info.asr[0].models[0].languages == ["en"]
    tts = info.tts[0]
    assert tts.supports_synthesize_streaming and tts.installed
    assert [v.name for v in tts.voices] == ["en_US-joe-medium"]
    assert tts.voices[0].languages == ["en_US"]
    handle = info.handle[0]
    assert handle.supports_handled_streaming and not handle.supports_home_control
    assert handle.models[0].name == "SmolLM2-135M-Instruct"
    for program in (*info.asr, *info.tts, *info.handle):
        assert program.attribution.name and program.version


SENTENCE = "Please turn on the lights in the kitchen."


@pytest.mark.parametrize(
    "audio",
    [
        PcmFormat(16000, 2, 1),
        PcmFormat(22050, 2, 1),
        PcmFormat(48000, 4, 2),
        PcmFormat(44100, 3, 1),
    ],
    ids=lambda a: f"{a.rate}Hz-{a.width * 8}bit-{a.channels}ch",
)
async def test_asr_transcribes_speech_in_any_format(
    server: ServerProcess, speech: Speech, audio: PcmFormat
) -> None:
    reply = await wy.transcribe(server.uri, speech.pcm(SENTENCE, audio), audio, language="en")
    text = wy.transcript_text(reply)
    assert wer(SENTENCE, text) <= 0.15, text
    types = [item.event.type for item in reply.events]
    assert types[0] == "transcript-start" and types[-2:] == ["transcript", "transcript-stop"]
    chunks = "".join(
        TranscriptChunk.from_event(i.event).text for i in reply.of_type(TranscriptChunk.is_type)
    )
    assert chunks.strip() == text


async def test_tts_audio_transcribes_back_to_its_text(
    server: ServerProcess, whisper: WhisperModel
) -> None:
    text = "The weather today is sunny and warm."
    reply = await wy.synthesize(server.uri, text)
    audio = reply.audio_format()
    assert audio == PcmFormat(22050, 2, 1)
    samples = soxr.resample(pcm_to_float(reply.audio(), 2), audio.rate, 16000)
    assert 1.0 < len(samples) / 16000 < 6.0
    segments, _ = whisper.transcribe(samples, language="en", beam_size=1)
    assert wer(text, "".join(s.text for s in segments)) <= 0.15


async def test_tts_voice_by_name_and_unknown_voice(server: ServerProcess) -> None:
    reply = await wy.synthesize(server.uri, "Hello.", voice="en_US-joe-medium")
    assert len(reply.audio()) > 0
    with pytest.raises(wy.ServerReplyError, match="no voice named 'nobody'"):
        await wy.synthesize(server.uri, "Hello.", voice="nobody")


async def test_streaming_synthesis_speaks_first_sentence_before_text_ends(
    server: ServerProcess, whisper: WhisperModel
) -> None:
    async with AsyncClient.from_uri(server.uri) as client:
        await client.write_event(SynthesizeStart().event())
        for piece in ["Good morning", ", the coffee is ready. ", "It will rain"]:
            await client.write_event(SynthesizeChunk(text=piece).event())
        # The first sentence's audio must arrive while the text stream is still open.
        first: list[str] = []
        async with asyncio.timeout(30):
            while "audio-stop" not in first:
                event = await client.read_event()
                assert event is not None
                first.append(event.type)
        assert first[0] == "audio-start" and "audio-chunk" in first
        await client.write_event(SynthesizeChunk(text=" tomorrow afternoon.").event())
        await client.write_event(Synthesize(text="ignored copy of the whole text").event())
        await client.write_event(SynthesizeStop().event())
        second: list[AudioChunk] = []
        types: list[str] = []
        async with asyncio.timeout(30):
            while not types or types[-1] != "synthesize-stopped":
                event = await client.read_event()
                assert event is not None
                types.append(event.type)
                if AudioChunk.is_type(event.type):
                    second.append(AudioChunk.from_event(event))
    assert types[0] == "audio-start" and types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert types.count("audio-start") == 1  # the backwards-compatible `synthesize` is ignored
    samples = soxr.resample(pcm_to_float(b"".join(c.audio for c in second), 2), 22050, 16000)
    segments, _ = whisper.transcribe(samples, language="en", beam_size=1)
    assert wer("It will rain tomorrow afternoon.", "".join(s.text for s in segments)) <= 0.35


def audio_of(events: list[Event]) -> bytes:
    return b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))


def whisper_hears(whisper: WhisperModel, pcm: bytes) -> str:
    """What Whisper hears in the embedded voice's audio (22050 Hz, 16-bit)."""
    samples = soxr.resample(pcm_to_float(pcm, 2), 22050, 16000)
    segments, _ = whisper.transcribe(samples, language="en", beam_size=1)
    return "".join(s.text for s in segments)


@pytest.mark.parametrize(
    ("opening", "first_piece", "ending"),
    [
        ("Once upon a time, there", "Once upon a time", " was a dragon who loved gold."),
        ("Please open the window because it", "Please open the window", " is warm."),
    ],
)
async def test_streaming_synthesis_speaks_a_first_piece_before_its_sentence_ends(
    server: ServerProcess, whisper: WhisperModel, opening: str, first_piece: str, ending: str
) -> None:
    async with AsyncClient.from_uri(server.uri) as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text=opening).event())
        # No sentence end has been sent: the first piece's audio comes all the same.
        first: list[Event] = []
        async with asyncio.timeout(30):
            while not first or not AudioStop.is_type(first[-1].type):
                event = await client.read_event()
                assert event is not None
                first.append(event)
        await client.write_event(SynthesizeChunk(text=ending).event())
        await client.write_event(SynthesizeStop().event())
        rest: list[Event] = []
        async with asyncio.timeout(30):
            while not rest or not SynthesizeStopped.is_type(rest[-1].type):
                event = await client.read_event()
                assert event is not None
                rest.append(event)

    heard = whisper_hears(whisper, audio_of(first))
    assert word_errors(first_piece, heard) <= 1, heard
    types = [e.type for e in rest]
    assert types[0] == "audio-start" and types[-2:] == ["audio-stop", "synthesize-stopped"]
    heard = whisper_hears(whisper, audio_of([*first, *rest]))
    assert word_errors(opening + ending, heard) <= 1, heard


async def test_synthesize_speaks_every_piece_in_one_audio_stream(
    server: ServerProcess, whisper: WhisperModel
) -> None:
    text = (
        "Good morning, Sam. The weather today is sunny and warm with a light wind. "
        "Take a jacket for tonight."
    )  # three pieces: "Good morning, Sam.", then a sentence each
    reply = await wy.synthesize(server.uri, text)  # reads up to the first `audio-stop`
    heard = whisper_hears(whisper, reply.audio())
    assert word_errors(text, heard) <= 1, heard
    chunks = [AudioChunk.from_event(i.event) for i in reply.of_type(AudioChunk.is_type)]
    stop = AudioStop.from_event(reply.events[-1].event)
    # Timestamps run on through the pieces: one stream, as if spoken at once.
    elapsed = [0]
    for chunk in chunks[:-1]:
        elapsed.append(elapsed[-1] + 1000 * len(chunk.audio) // (22050 * 2))
    assert [c.timestamp for c in chunks] == elapsed
    assert stop.timestamp == elapsed[-1] + 1000 * len(chunks[-1].audio) // (22050 * 2)


async def test_handle_streams_and_remembers_per_conversation(server: ServerProcess) -> None:
    first_id, other_id = uuid.uuid4().hex, uuid.uuid4().hex
    reply = await wy.handle(server.uri, "My name is Zorblax. Remember my name.", first_id)
    types = [i.event.type for i in reply.events]
    assert types[0] == "handled-start" and types[-2:] == ["handled", "handled-stop"]
    chunks = "".join(
        HandledChunk.from_event(i.event).text for i in reply.of_type(HandledChunk.is_type)
    )
    assert chunks.strip() == wy.handled_text(reply) != ""
    assert reply.events[-2].event.data["context"]["conversation_id"] == first_id

    remembered = wy.handled_text(await wy.handle(server.uri, "What is my name?", first_id))
    assert "zorblax" in remembered.lower()
    other = wy.handled_text(await wy.handle(server.uri, "What is my name?", other_id))
    assert "zorblax" not in other.lower()


async def test_handle_without_conversation_id_gets_one(server: ServerProcess) -> None:
    reply = await wy.handle(server.uri, "Hello!", None)
    conversation_id = reply.events[-2].event.data["context"]["conversation_id"]
    assert isinstance(conversation_id, str) and len(conversation_id) >= 16


async def test_handle_answers_as_the_persona_the_context_names(server: ServerProcess) -> None:
    async def opening(persona: str | None) -> tuple[str, dict[str, object]]:
        """The first words of the answer to a fresh conversation, and the echoed context
        (the rest is not waited for: the storyteller tells long stories)."""
        context = {"persona": persona} if persona is not None else None
        text = ""
        async with AsyncClient.from_uri(server.uri) as client, asyncio.timeout(120):
            await client.write_event(Transcript(text="Who are you?", context=context).event())
            while len(text) < 30:
                event = await client.read_event()
                assert event is not None and event.type != "error", event
                if HandledStart.is_type(event.type):
                    echoed = HandledStart.from_event(event).context or {}
                elif HandledChunk.is_type(event.type):
                    text += HandledChunk.from_event(event).text
                elif event.type == "handled":
                    break
        return text, echoed

    default, echoed = await opening(None)
    assert "persona" not in echoed and default.strip()
    # The LLM is deterministic (temperature 0) and each conversation fresh: the same
    # persona gives the same answer, another system prompt another one.
    named, echoed = await opening("locara")
    assert named == default and echoed["persona"] == "locara"
    storyteller, echoed = await opening("storyteller")
    assert storyteller != default and storyteller.strip() and echoed["persona"] == "storyteller"


@pytest.mark.parametrize(
    ("persona", "code"), [("pirate", "not-found"), (7, "bad-event"), ("", "bad-event")]
)
async def test_handle_refuses_a_persona_it_does_not_have(
    server: ServerProcess, persona: object, code: str
) -> None:
    async with AsyncClient.from_uri(server.uri) as client:
        await client.write_event(Transcript(text="Hello!", context={"persona": persona}).event())
        answer = await asyncio.wait_for(client.read_event(), 30)
        assert answer is not None and answer.type == "error", answer
        assert answer.data["code"] == code, answer.data
        # The connection goes on: the next request is answered.
        await client.write_event(Transcript(text="Hello!", context={"persona": "locara"}).event())
        answer = await asyncio.wait_for(client.read_event(), 30)
        assert answer is not None and answer.type == "handled-start", answer


async def test_concurrent_requests_wait_for_the_model_and_all_finish(server: ServerProcess) -> None:
    texts = [f"This is request number {n}." for n in range(4)]
    replies = await asyncio.gather(*(wy.synthesize(server.uri, t) for t in texts))
    assert all(len(r.audio()) > 22050 for r in replies)
