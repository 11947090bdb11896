"""A bounded Wyoming event reader.

`wyoming.event.async_read_event` trusts `data_length` and `payload_length` and
reads whatever a peer announces. On a LAN that anyone can reach, a server must
not: this reader checks the header's shape and both lengths against the
configured limits before reading a byte of the body, and says what was wrong.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from wyoming.event import Event

from ..errors import LocaraError

MAX_TYPE_CHARS = 64


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


def _parse_header(line: bytes, limits: ReadLimits) -> tuple[dict[str, Any], int, int]:
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError("bad-header", f"header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad-header", "header must be a JSON object")
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
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise ProtocolError("bad-header", "event data must be a JSON object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError("bad-header", f"event data is not JSON: {error}") from None
    return Event(type=header["type"], data=data, payload=payload)
