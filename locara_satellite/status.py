"""The satellite's one-line state, logged once per change and told to the server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum

_LOGGER = logging.getLogger(__name__)


class State(StrEnum):
    CONNECTING = "connecting"
    IDLE = "idle"
    """Connected, waiting for the wake word (or push-to-talk)."""
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


class StatusLine:
    def __init__(self, on_change: Callable[[State], None] = lambda state: None) -> None:
        self.state: State | None = None
        self.on_change = on_change

    def set(self, state: State) -> None:
        if state is self.state:
            return
        self.state = state
        _LOGGER.info("State: %s", state.value)
        self.on_change(state)
