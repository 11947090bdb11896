"""A watch on the event loop: while the loop is held up, every room's audio is late.

A task on the loop beats every `beat_s`, and at each beat re-arms the standard
library's `faulthandler` timer. If the next beat does not come within `stall_s`, the
timer's thread, which is C and needs no interpreter lock, writes the stack of every
Python thread to `stacks` (stderr); what the loop's thread was running is the culprit,
or close to it. A watcher written in Python could not do that: code that holds the
interpreter lock (a C extension that does not release it, a long garbage collection)
stops every Python thread, the watcher's too, so it would only see the stack after the
stall. Once the loop beats again, the stall's length is logged, with the loop thread's
name in the stacks.

asyncio's own slow-callback report needs debug mode, which slows every callback; this
costs a wake-up per beat.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import sys
import threading
import time
from typing import TextIO

_LOGGER = logging.getLogger(__name__)


class LoopWatch:
    def __init__(
        self, stall_s: float = 0.5, beat_s: float = 0.1, stacks: TextIO | None = None
    ) -> None:
        self.stall_s = stall_s
        self.beat_s = beat_s
        self.stacks = stacks
        self.stalls = 0
        self.longest_stall_s = 0.0

    async def run(self) -> None:
        """Beat until cancelled. Only one watch can run in a process (one timer)."""
        stacks = self.stacks or sys.stderr
        loop_thread = loop_thread_name()
        beat = time.monotonic()
        try:
            while True:
                faulthandler.dump_traceback_later(self.stall_s + self.beat_s, file=stacks)
                await asyncio.sleep(self.beat_s)
                stall_s = time.monotonic() - beat - self.beat_s
                beat = time.monotonic()
                if stall_s >= self.stall_s:
                    self.stalls += 1
                    self.longest_stall_s = max(self.longest_stall_s, stall_s)
                    _LOGGER.warning(
                        "The event loop went on after a stall of %.2f s (audio was late for "
                        "every room); what every thread ran %.1f s into it is above, after "
                        "'Timeout'; the loop's is '%s'",
                        stall_s, self.stall_s, loop_thread,
                    )  # fmt: skip
        finally:
            faulthandler.cancel_dump_traceback_later()


def loop_thread_name() -> str:
    """How `faulthandler` names the calling thread in its stacks."""
    return f"Thread 0x{threading.get_ident():016x}"
