"""Noticing a session satellite that stopped reading, though it still sends its microphone.

Such a satellite never fills the server's memory (a reply's audio waits in the kernel's
socket buffers, and generation pauses at `max_buffered_audio_s`), but it holds its
session forever. A satellite that promised `played` reports must send one for each
reply: at the latest `grace_s` after the reply could have finished playing (its first
audio left plus its length in real time, or its last audio left, whichever is later).
One that does not is overdue, and its connection is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Sent:
    first_at: float
    seconds: float = 0.0
    deadline: asyncio.TimerHandle | None = None


class PlayedWatch:
    def __init__(self, grace_s: float, on_overdue: Callable[[str], None]) -> None:
        self.grace_s = grace_s
        self._on_overdue = on_overdue
        self._sent: dict[str, _Sent] = {}

    def audio_sent(self, reply_id: str, seconds: float) -> None:
        sent = self._sent.setdefault(reply_id, _Sent(time.monotonic()))
        sent.seconds += seconds

    def reply_sent(self, reply_id: str) -> None:
        """All of the reply's audio has left (finished, or cut by a barge-in)."""
        sent = self._sent.get(reply_id)
        if sent is None or sent.deadline is not None:
            return
        now = time.monotonic()
        playable_until = max(sent.first_at + sent.seconds, now)
        sent.deadline = asyncio.get_running_loop().call_later(
            playable_until - now + self.grace_s, self._overdue, reply_id
        )

    def reported(self, reply_id: str) -> None:
        sent = self._sent.pop(reply_id, None)
        if sent is not None and sent.deadline is not None:
            sent.deadline.cancel()

    def _overdue(self, reply_id: str) -> None:
        if self._sent.pop(reply_id, None) is not None:
            self._on_overdue(reply_id)

    def close(self) -> None:
        for sent in self._sent.values():
            if sent.deadline is not None:
                sent.deadline.cancel()
        self._sent.clear()
