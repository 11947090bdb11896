"""Locara's own events over Wyoming: voice sessions (`session`) and the control channel.

Each event is a dataclass with `is_type` / `event()` / `from_event()`, the `wyoming`
package's pattern, defined once and used by both ends.
"""

from collections.abc import Awaitable, Callable

from wyoming.event import Event

WriteEvent = Callable[[Event], Awaitable[None]]
"""How a module sends an event to its peer: a connection's bounded `write_event`."""
