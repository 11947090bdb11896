"""Fuzzing the event reader with Hypothesis: whatever bytes arrive, it returns whole
events within the limits, None at the end, or a ProtocolError; nothing else escapes,
and nothing past a limit is read.

The suite runs 500 inputs per target; the long run is

    LOCARA_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest tests/test_fuzz_reader.py
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wyoming.event import Event

from locara_wyoming.connection.reader import MAX_JSON_DEPTH, ProtocolError, ReadLimits, read_event

from .support.strategies import json_values

LIMITS = ReadLimits(max_header_bytes=512, max_data_bytes=256, max_payload_bytes=1024)
STREAM_LIMIT = 4096  # asyncio's own line limit, above the header limit as in the server
FUZZ = settings(
    max_examples=int(os.environ.get("LOCARA_FUZZ_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

lengths = st.none() | st.integers(-5, 3000) | st.text(max_size=3) | st.booleans() | st.floats()


@st.composite
def near_valid_events(draw: st.DrawFn) -> bytes:
    """Headers that are mostly right, with lying lengths and bodies that may not fit."""
    header: dict[str, object] = {"type": draw(st.text(min_size=0, max_size=80) | json_values)}
    if draw(st.booleans()):
        header["data"] = draw(json_values)
    for key in ("data_length", "payload_length"):
        if draw(st.booleans()):
            header[key] = draw(lengths)
    body = draw(st.binary(max_size=1500))
    if draw(st.booleans()):
        body = json.dumps(draw(json_values)).encode() + body
    return json.dumps(header).encode() + b"\n" + body


def read_all(raw: bytes, limits: ReadLimits = LIMITS) -> list[object]:
    """Every event the reader gets out of `raw`, up to the end or the first framing error."""

    async def run() -> list[object]:
        reader = asyncio.StreamReader(limit=max(STREAM_LIMIT, limits.max_header_bytes * 2))
        reader.feed_data(raw)
        reader.feed_eof()
        results: list[object] = []
        while True:
            try:
                event = await read_event(reader, limits)
            except ProtocolError as error:
                assert error.code in ("bad-header", "too-large"), error.code
                results.append(error)
                return results
            if event is None:
                return results
            results.append(event)

    return asyncio.run(run())


def check(raw: bytes) -> None:
    results = read_all(raw)
    assert all(isinstance(r, Event) for r in results[:-1])  # an error only ends the stream
    for result in results:
        if isinstance(result, Event):
            assert isinstance(result.type, str) and 0 < len(result.type) <= 64
            assert isinstance(result.data, dict)
            assert result.payload is None or len(result.payload) <= LIMITS.max_payload_bytes


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(st.lists(near_valid_events(), min_size=1, max_size=4))
def test_streams_of_near_valid_events(events: list[bytes]) -> None:
    check(b"".join(events))


def test_a_lying_length_is_refused_before_anything_is_read() -> None:
    """A header promising a gigabyte gets `too-large` at once, with no body sent at all."""
    raw = json.dumps({"type": "audio-chunk", "payload_length": 10**9}).encode() + b"\n"
    (result,) = read_all(raw)
    assert isinstance(result, ProtocolError) and result.code == "too-large"


def _nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


DEEP_LIMITS = ReadLimits(max_header_bytes=16_384, max_data_bytes=16_384, max_payload_bytes=0)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 5000])
@pytest.mark.parametrize("where", ["header", "data"])
def test_json_nested_past_the_limit_is_refused(where: str, depth: int) -> None:
    """Up to MAX_JSON_DEPTH levels (the header or the data object itself the first) are
    read; deeper is `bad-header`, also past the depth where Python's parser raises
    RecursionError."""
    if where == "header":
        raw = f'{{"type": "x", "data": {{"a": {_nested_list(depth - 2)}}}}}\n'.encode()
    else:
        body = f'{{"a": {_nested_list(depth - 1)}}}'.encode()
        raw = json.dumps({"type": "x", "data_length": len(body)}).encode() + b"\n" + body
    (result,) = read_all(raw, DEEP_LIMITS)
    if depth <= MAX_JSON_DEPTH:
        assert isinstance(result, Event), result
    else:
        assert isinstance(result, ProtocolError) and result.code == "bad-header", result
        assert "nests over" in result.text
