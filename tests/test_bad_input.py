"""Bad input on one connection gets an `error` or a clean close, never harm to others."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from wyoming.event import Event, async_write_event

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.bench import client as wy
from locara_wyoming.bench.server_process import ServerProcess

from .support.control_client import control, token_of
from .support.raw_wyoming import (
    expect_alive,
    expect_closed,
    expect_error,
    header,
    next_event,
    raw_connection,
)
from .support.speech import Speech

pytestmark = pytest.mark.models


def nested(depth: int) -> object:
    """A JSON value of lists `depth` levels deep."""
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


FRAMING_ERRORS = [
    pytest.param(b"{this is not json\n", "bad-header", id="malformed-json"),
    pytest.param(b"[1, 2, 3]\n", "bad-header", id="header-not-object"),
    pytest.param(header(type=5), "bad-header", id="type-not-string"),
    pytest.param(header(type="describe", data="x"), "bad-header", id="data-not-object"),
    pytest.param(header(type="describe", data_length=-1), "bad-header", id="negative-data-length"),
    pytest.param(header(type="describe", data_length="9"), "bad-header", id="data-length-not-int"),
    pytest.param(
        header(type="describe", data_length=10**9), "too-large", id="data-length-over-limit"
    ),
    pytest.param(
        header(type="audio-chunk", payload_length=10**9), "too-large", id="payload-over-limit"
    ),
    pytest.param(header(type="x", pad="a" * 20_000), "too-large", id="header-over-limit"),
    pytest.param(b"\x00\xff\xfe garbage \x80\n", "bad-header", id="binary-garbage"),
    # Past about a thousand levels Python's JSON parser raises RecursionError.
    pytest.param(
        b'{"type": "ping", "data": {"text": ' + b"[" * 5000 + b"]" * 5000 + b"}}\n",
        "bad-header",
        id="header-nested-5000-deep",
    ),
    pytest.param(
        header(type="ping", data_length=20_000) + b"[" * 10_000 + b"]" * 10_000,
        "bad-header",
        id="data-nested-10000-deep",
    ),
    pytest.param(
        header(type="ping", data={"text": nested(100)}), "bad-header", id="header-nested-100-deep"
    ),
]


@pytest.mark.parametrize(("raw", "code"), FRAMING_ERRORS)
async def test_broken_framing_gets_error_then_close(
    server: ServerProcess, raw: bytes, code: str
) -> None:
    async with raw_connection(server) as (reader, writer):
        writer.write(raw)
        await writer.drain()
        await expect_error(reader, code)
        await expect_closed(reader)


REQUEST_ERRORS = [
    pytest.param(Event("frobnicate"), "unknown-event", id="unknown-event"),
    pytest.param(
        Event("audio-start", {"rate": 0, "width": 2, "channels": 1}),
        "bad-audio-format",
        id="rate-zero",
    ),
    pytest.param(
        Event("audio-start", {"rate": 16000, "width": 7, "channels": 1}),
        "bad-audio-format",
        id="width-7",
    ),
    pytest.param(
        Event("audio-start", {"rate": 16000, "width": 2, "channels": 0}),
        "bad-audio-format",
        id="no-channels",
    ),
    pytest.param(
        Event("audio-start", {"rate": "fast", "width": 2, "channels": 1}),
        "bad-audio-format",
        id="rate-str",
    ),
    pytest.param(Event("audio-start", {"width": 2}), "bad-event", id="audio-start-missing-rate"),
    pytest.param(
        Event("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\0\0"),
        "out-of-order",
        id="chunk-before-start",
    ),
    pytest.param(Event("audio-stop"), "out-of-order", id="stop-before-start"),
    pytest.param(
        Event("synthesize-chunk", {"text": "hi"}), "out-of-order", id="synth-chunk-before-start"
    ),
    pytest.param(Event("synthesize-stop"), "out-of-order", id="synth-stop-before-start"),
    pytest.param(Event("synthesize", {"text": "a" * 20_000}), "too-large", id="text-too-long"),
    pytest.param(
        Event("synthesize", {"voice": {"name": "x"}}), "bad-event", id="synthesize-without-text"
    ),
    pytest.param(Event("select-program", {"name": "nope"}), "not-found", id="unknown-program"),
]


@pytest.mark.parametrize(("event", "code"), REQUEST_ERRORS)
async def test_bad_request_gets_error_and_connection_goes_on(
    server: ServerProcess, event: Event, code: str
) -> None:
    async with raw_connection(server) as (reader, writer):
        await async_write_event(event, writer)
        await expect_error(reader, code)
        await expect_alive(writer, reader)


async def test_chunk_format_must_match_its_start(server: ServerProcess) -> None:
    async with raw_connection(server) as (reader, writer):
        await async_write_event(
            Event("audio-start", {"rate": 16000, "width": 2, "channels": 1}), writer
        )
        chunk = Event("audio-chunk", {"rate": 8000, "width": 2, "channels": 1}, b"\0\0" * 80)
        await async_write_event(chunk, writer)
        await expect_error(reader, "bad-audio-format")
        await expect_alive(writer, reader)


async def test_second_synthesize_start_is_out_of_order(server: ServerProcess) -> None:
    async with raw_connection(server) as (reader, writer):
        await async_write_event(Event("synthesize-start"), writer)
        await async_write_event(Event("synthesize-start"), writer)
        await expect_error(reader, "out-of-order")
        await expect_alive(writer, reader)


async def test_utterance_over_the_limit_is_refused(server: ServerProcess) -> None:
    audio = PcmFormat(16000, 2, 1)
    silence = b"\0\0" * 16000 * 25  # 25 s, over the test limit of 20 s
    with pytest.raises(wy.ServerReplyError, match="longer than 20 s"):
        await wy.transcribe(server.uri, silence, audio)


async def test_disconnects_mid_stream_leave_the_server_serving(
    server: ServerProcess, speech: Speech
) -> None:
    async with raw_connection(server) as (_reader, writer):
        await async_write_event(
            Event("audio-start", {"rate": 16000, "width": 2, "channels": 1}), writer
        )
        await async_write_event(
            Event("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\1\0" * 4000), writer
        )
    async with raw_connection(server) as (_reader, writer):
        writer.write(header(type="audio-chunk", payload_length=5000) + b"only part of it")
        await writer.drain()
    async with raw_connection(server) as (_reader, writer):
        await async_write_event(
            Event("synthesize", {"text": "A long sentence that nobody will hear."}), writer
        )
    audio = PcmFormat(16000, 2, 1)
    reply = await wy.transcribe(server.uri, speech.pcm("Good night.", audio), audio)
    assert "night" in wy.transcript_text(reply).lower()


async def test_garbage_on_one_connection_does_not_disturb_another(
    server: ServerProcess, speech: Speech
) -> None:
    audio = PcmFormat(22050, 2, 1)
    sentence = "Set a timer for ten minutes."

    async def hostile() -> None:
        for _ in range(20):
            async with raw_connection(server) as (reader, writer):
                writer.write(b"\xde\xad\xbe\xef" * 100 + b"\n")
                await writer.drain()
                await expect_error(reader, "bad-header")

    transcription, _ = await asyncio.gather(
        wy.transcribe(server.uri, speech.pcm(sentence, audio), audio), hostile()
    )
    assert "timer" in wy.transcript_text(transcription).lower()


async def test_connections_over_the_cap_are_refused(server: ServerProcess) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(12):  # the test configuration's max_connections
            reader, writer = await stack.enter_async_context(raw_connection(server))
            await expect_alive(writer, reader)
        async with raw_connection(server) as (reader, _writer):
            error = await expect_error(reader, "busy")
            assert "12 connections" in error.text
            await expect_closed(reader)
    # The slots free up as the server sees those connections close.
    async with asyncio.timeout(10):
        while True:
            async with raw_connection(server) as (reader, writer):
                await async_write_event(Event("ping", {"text": "still there?"}), writer)
                answer = await next_event(reader)
            assert answer is not None
            if answer.type == "pong":
                break
            assert answer.data.get("code") == "busy", answer
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("request_type", ["locara-control", "locara-settings"])
async def test_a_token_with_a_lone_surrogate_is_unauthorized(
    server: ServerProcess, request_type: str
) -> None:
    """JSON's `"\\ud800"` is a str that strict UTF-8 cannot encode; it once reached the
    token comparison's `encode()` and came back as a traceback."""
    tracebacks = len(server.log.matching("Traceback"))
    async with raw_connection(server) as (reader, writer):
        writer.write(
            header(type=request_type, data={"token": "\ud800", "id": "lone", "settings": {}})
        )
        await writer.drain()
        answer = await next_event(reader)
        assert answer is not None and answer.type == "error", answer
        assert answer.data["code"] == "unauthorized" and answer.data["request_id"] == "lone"
        await expect_alive(writer, reader)
    assert len(server.log.matching("Traceback")) == tracebacks, server.log[-20:]


LONE_SURROGATES = [
    pytest.param("ping", {"text": "still \ud800 there?"}, id="ping-text"),
    pytest.param("synthesize", {"text": "Hello \udfff there."}, id="synthesize-text"),
    pytest.param("transcript", {"text": "\ud800"}, id="transcript-text"),
]


@pytest.mark.parametrize(("event_type", "data"), LONE_SURROGATES)
async def test_text_with_a_lone_surrogate_is_a_bad_event(
    server: ServerProcess, event_type: str, data: dict[str, str]
) -> None:
    """JSON's `"\\ud800"` (json.dumps writes the escape) is a str that UTF-8 cannot
    encode: a ping's echo once failed on it with a traceback. Every string field of an
    event is refused as it is parsed, before any handler uses it."""
    tracebacks = len(server.log.matching("Traceback"))
    async with raw_connection(server) as (reader, writer):
        writer.write(header(type=event_type, data=data))
        await writer.drain()
        error = await expect_error(reader, "bad-event")
        assert "text holds a lone surrogate" in error.text, error
        await expect_alive(writer, reader)
    assert len(server.log.matching("Traceback")) == tracebacks, server.log[-20:]


async def test_a_satellite_named_with_a_lone_surrogate_stops_no_push(
    server: ServerProcess,
) -> None:
    """A session's name and area go into the pushes to Home Assistant. One with a lone
    surrogate once killed the subscriber's push writer, silently: the integration got
    no push again. The request is refused now, and the next satellite is pushed."""
    token = token_of(server)
    async with (
        control(server.host, server.port, token) as hub,
        raw_connection(server) as (reader, writer),
    ):
        odd = {"locara": {"protocol": 1, "name": "den", "area": "Den \udc00"}}
        writer.write(header(type="run-pipeline", data=odd))
        await writer.drain()
        error = await expect_error(reader, "bad-request")
        assert "run-pipeline area holds a lone surrogate (U+DC00)" in error.text, error
        plain = {"locara": {"protocol": 1, "name": "surrogate-free"}}
        await async_write_event(Event("run-pipeline", plain), writer)
        started = await next_event(reader)
        assert started is not None and started.type == "locara-session", started
        await hub.push("locara-satellite", lambda data: data["name"] == "surrogate-free")
