"""What a Wyoming program is to the connection that serves it.

A program keeps its state for one connection and offers `handlers`: the event types
it serves, each with the coroutine that serves it. A handler answers at once what is
quick (checking the event, keeping audio or text) and hands what waits for a model to
`enqueue`, which serves one connection's requests in order, off the reading loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wyoming.event import Event

from ..errors import TooLarge
from ..protocol import WriteEvent
from ..server_context import ServerContext

Request = Callable[[], Awaitable[None]]
Handler = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class ProgramLink:
    """A program's way back to its connection."""

    context: ServerContext
    write: WriteEvent
    enqueue: Callable[[Request], None]
    """Queue a request; Busy when the connection already has too many waiting."""

    def check_length(self, text: str) -> None:
        limit = self.context.config.limits.max_text_chars
        if len(text) > limit:
            raise TooLarge(f"text of {len(text)} characters is over {limit}")
