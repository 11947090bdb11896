"""A bounded Wyoming event reader.

`wyoming.event.async_read_event` trusts `data_length` and `payload_length` and
reads whatever a peer announces. On a LAN that anyone can reach, a server must
not: this reader checks the header's shape and both lengths against the
configured limits before reading a byte of the body, and says what was wrong.
JSON nested deeper than any event needs is refused too: Python's parser raises
RecursionError at about a thousand levels, and a handler that walks a value (a repr in
an error's text, `json.dumps`) can reach the interpreter's limit far sooner.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from wyoming.event import Event

from ..errors import LocaraError

MAX_TYPE_CHARS = 64
MAX_JSON_DEPTH = 32
"""Levels of objects and arrays a header or its data may nest: far more than any event
needs (a settings change, among the deepest the server reads, nests five)."""


@dataclass(frozen=True)
class ReadLimits:
    max_header_bytes: int
    max_data_bytes: int
    max_payload_bytes: int


class ProtocolError(LocaraError):
    """The peer broke the framing; the connection cannot go on."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError("bad-header", f"{key} must be a non-negative integer, got {value!r}")
    if value > limit:
        raise ProtocolError("too-large", f"{key} {value} is over the limit of {limit} bytes")
    return value


def _nested_deeper_than(value: object, limit: int) -> bool:
    """Whether objects and arrays in `value` nest more than `limit` levels, `value`
    itself being the first; level by level, without recursion."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            item
            for container in level
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, dict | list)
        ]
        if not level:
            return False
    return True


def _too_deep(what: str) -> ProtocolError:
    return ProtocolError("bad-header", f"{what} nests over {MAX_JSON_DEPTH} levels deep")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """`raw` parsed as a JSON object of at most MAX_JSON_DEPTH levels; `what` names it."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError("bad-header", f"{what} is not JSON: {error}") from None
    except RecursionError:  # the parser's own limit, at about a thousand levels
        raise _too_deep(what) from None
    if not isinstance(value, dict):
        raise ProtocolError("bad-header", f"{what} must be a JSON object")
    if _nested_deeper_than(value, MAX_JSON_DEPTH):
        raise _too_deep(what)
    return value


def _parse_header(line: bytes, limits: ReadLimits) -> tuple[dict[str, Any], int, int]:
    header = _json_object(line, "header")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= MAX_TYPE_CHARS:
        raise ProtocolError("bad-header", f"header needs a string 'type', got {event_type!r}")
    if not isinstance(header.get("data", {}), dict):
        raise ProtocolError("bad-header", "header 'data' must be a JSON object")
    data_length = _length(header, "data_length", limits.max_data_bytes)
    payload_length = _length(header, "payload_length", limits.max_payload_bytes)
    return header, data_length, payload_length


async def read_event(reader: asyncio.StreamReader, limits: ReadLimits) -> Event | None:
    """The next event, or None when the peer has closed (also mid-event)."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError("too-large", "header line is too long") from None
    if len(line) > limits.max_header_bytes:
        raise ProtocolError(
            "too-large",
            f"header of {len(line)} bytes is over the limit of {limits.max_header_bytes}",
        )
    header, data_length, payload_length = _parse_header(line, limits)
    data: dict[str, Any] = dict(header.get("data") or {})
    try:
        if data_length:
            data.update(_json_object(await reader.readexactly(data_length), "event data"))
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    return Event(type=header["type"], data=data, payload=payload)
