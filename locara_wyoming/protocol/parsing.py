"""Parsing an event from an untrusted peer into its dataclass, fields checked.

The `wyoming` package's `from_event` trusts its input: a missing field is a KeyError,
and a field of the wrong type goes through unnoticed until it breaks something far
away. `parse_event` refuses both at once, as `BadEvent`, so that a handler works on
fields of the types its dataclass declares, and any other exception that escapes a
handler is known to be a bug of ours. A string field must be text UTF-8 can carry: JSON
may hold a lone surrogate (`"\\ud800"`), which no answer, log file or model takes.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Protocol, TypeVar

from wyoming.event import Event

from ..errors import BadEvent, LocaraError


class _Parsable(Protocol):
    @classmethod
    def from_event(cls, event: Event) -> Any: ...


T = TypeVar("T", bound=_Parsable)


def parse_event(kind: type[T], event: Event, wrong_type: type[LocaraError] = BadEvent) -> T:
    """`kind.from_event(event)`; BadEvent naming a missing field, `wrong_type` one of the
    wrong type (BadAudioFormat for an audio format, as that is what a client must fix)."""
    try:
        parsed: T = kind.from_event(event)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BadEvent(f"bad {event.type!r} event: {type(error).__name__}: {error}") from None
    check_fields(parsed, event.type, wrong_type)
    return parsed


def check_fields(value: object, where: str, wrong_type: type[LocaraError] = BadEvent) -> None:
    """`wrong_type` unless every field of the dataclass `value` has its declared type."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    for name, hint, accepted in _field_types(type(value)):
        item = getattr(value, name)
        if accepted is not None and (
            not isinstance(item, accepted) or (isinstance(item, bool) and bool not in accepted)
        ):
            raise wrong_type(
                f"bad {where!r} event: {name} must be {_describe(hint)}, not {type(item).__name__}"
            )
        if isinstance(item, str):
            check_text(item, f"bad {where!r} event: {name}")
        else:
            check_fields(item, f"{where}.{name}", wrong_type)


def check_text(text: str, what: str, refusal: type[LocaraError] = BadEvent) -> None:
    """`refusal` naming `what` unless UTF-8 can carry `text`."""
    if text.isascii():  # O(1) in CPython: only other text is encoded
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        point = ord(text[error.start])
        raise refusal(f"{what} holds a lone surrogate (U+{point:04X}), not text") from None


@functools.cache
def _field_types(kind: type) -> tuple[tuple[str, Any, tuple[type, ...] | None], ...]:
    """Each field's name, declared type and the types its value may have (None: any),
    worked out once per dataclass: audio comes 50 times a second."""
    hints = typing.get_type_hints(kind)
    return tuple(
        (field.name, hints.get(field.name, Any), _types_of(hints.get(field.name, Any)))
        for field in dataclasses.fields(kind)
    )


def _types_of(hint: Any) -> tuple[type, ...] | None:
    """What `isinstance` must accept for `hint`; None for anything. A bool is no number
    unless `bool` itself is named, and an int is a float."""
    if hint is Any:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_types_of(arg) for arg in typing.get_args(hint)]
        return None if None in parts else tuple(t for part in parts if part for t in part)
    if origin is not None:  # list[str], dict[str, Any]: the container's type is enough
        return (origin,)
    if hint is float:
        return (int, float)
    return (hint,) if isinstance(hint, type) else None


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    name = getattr(origin or hint, "__name__", None)
    return name if isinstance(name, str) else str(hint)
