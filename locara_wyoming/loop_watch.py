"""A watch on the event loop: while the loop is held up, every room's audio is late.

A task on the loop beats every `beat_s`. A thread of its own checks the beat; when the
loop has not beaten for `stall_s`, it logs what the loop's thread is running at that
moment (its stack: the culprit, or close to it), and once the loop beats again, how
long the stall lasted. asyncio's own slow-callback report needs debug mode, which
slows every callback; this costs a wake-up per beat.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

_LOGGER = logging.getLogger(__name__)

STACK_FRAMES = 12


class LoopWatch:
    def __init__(self, stall_s: float = 0.5, beat_s: float = 0.1) -> None:
        self.stall_s = stall_s
        self.beat_s = beat_s
        self.stalls = 0
        self.longest_stall_s = 0.0
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()

    async def run(self) -> None:
        """Beat until cancelled."""
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stopped.clear()
        threading.Thread(target=self._watch, name="loop watch", daemon=True).start()
        try:
            while True:
                await asyncio.sleep(self.beat_s)
                self._beat = time.monotonic()
        finally:
            self._stopped.set()

    def _watch(self) -> None:
        stalled_after: float | None = None  # the last beat before the stall
        while not self._stopped.wait(self.beat_s / 2):
            beat = self._beat
            if stalled_after is None:
                if time.monotonic() - beat >= self.stall_s + self.beat_s:
                    stalled_after = beat
                    _LOGGER.warning(
                        "The event loop is held up (audio is late for every room); "
                        "it is running:\n%s",
                        self._loop_stack(),
                    )
            elif beat != stalled_after:
                stall_s = beat - stalled_after - self.beat_s
                self.stalls += 1
                self.longest_stall_s = max(self.longest_stall_s, stall_s)
                _LOGGER.warning("The event loop went on after a stall of %.2f s", stall_s)
                stalled_after = None

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "(no stack)"
        return "".join(traceback.format_stack(frame)[-STACK_FRAMES:]).rstrip()
