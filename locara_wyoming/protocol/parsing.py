"""Parsing an event from an untrusted peer into its dataclass, fields checked.

The `wyoming` package's `from_event` trusts its input: a missing field is a KeyError,
and a field of the wrong type goes through unnoticed until it breaks something far
away. `parse_event` refuses both at once, as `BadEvent`, so that a handler works on
fields of the types its dataclass declares, and any other exception that escapes a
handler is known to be a bug of ours.
"""

from __future__ import annotations

import dataclasses
import enum
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
    hints = _hints(type(value))
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        hint = hints.get(field.name, Any)
        if not _matches(item, hint):
            raise wrong_type(
                f"bad {where!r} event: {field.name} must be {_describe(hint)}, "
                f"not {type(item).__name__}"
            )
        check_fields(item, f"{where}.{field.name}", wrong_type)


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    """The dataclass's field types, resolved once (audio comes 50 times a second)."""
    return typing.get_type_hints(kind)


def _matches(value: object, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is not None:  # list[str], dict[str, Any]: the container's type is enough
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    name = getattr(origin or hint, "__name__", None)
    return name if isinstance(name, str) else str(hint)
