"""A session's events on their way to the satellite, and how much reply audio waits
among them: what a satellite that stops reading leaves the server holding."""

from __future__ import annotations

import asyncio

from .events import ReplyAudio, SessionEvent


class EventQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self.audio_bytes = 0
        """Bytes of reply audio queued and not yet taken."""

    def put(self, event: SessionEvent | None) -> None:
        """Queue an event; None ends the stream."""
        if isinstance(event, ReplyAudio):
            self.audio_bytes += len(event.audio)
        self._queue.put_nowait(event)

    async def get(self) -> SessionEvent | None:
        event = await self._queue.get()
        if isinstance(event, ReplyAudio):
            self.audio_bytes -= len(event.audio)
        return event
