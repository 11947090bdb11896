"""A watch on the event loop: while the loop is held up, every room's audio is late.

A task on the loop beats every `beat_s`. A watcher thread looks at the beats as often,
and at each new one re-arms the standard library's `faulthandler` timer. If the beats
stop for `stall_s`, the timer's thread, which is C and needs no interpreter lock,
writes the stack of every Python thread to `stacks` (stderr); what the loop's thread
was running is the culprit, or close to it. A watcher written in Python could not do
that: code that holds the interpreter lock (a C extension that does not release it, a
long garbage collection) stops every Python thread, the watcher's too.

Re-arming waits for the previous timer thread to end, so it is the watcher's job, not
the loop's: on a virtual machine whose host takes a CPU away for a second (steal), the
loop would otherwise wait for a timer thread that is not running. Once the loop beats
again, the stall's length is logged with the loop thread's name in the stacks and, on
Linux, the CPU time the hypervisor took meanwhile: when that is about the stall's
length, the host held the machine up, not this program.

asyncio's own slow-callback report needs debug mode, which slows every callback; this
costs two wake-ups per beat.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

_LOGGER = logging.getLogger(__name__)

_PROC_STAT = Path("/proc/stat")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class LoopWatch:
    def __init__(
        self, stall_s: float = 0.5, beat_s: float = 0.1, stacks: TextIO | None = None
    ) -> None:
        self.stall_s = stall_s
        self.beat_s = beat_s
        self.stacks = stacks
        self.stalls = 0
        self.longest_stall_s = 0.0
        self._beat = time.monotonic()
        self._steal_at_beat = steal_s()
        """`steal_s()` when the watcher saw the latest beat: /proc is read off the loop."""

    async def run(self) -> None:
        """Beat until cancelled. Only one watch can run in a process (one timer)."""
        stopped = threading.Event()
        watcher = threading.Thread(
            target=self._rearm_while_beating,
            args=(self.stacks or sys.stderr, stopped),
            name="loop watch",
            daemon=True,
        )
        loop_thread = loop_thread_name()
        watcher.start()
        try:
            while True:
                self._beat = time.monotonic()
                await asyncio.sleep(self.beat_s)
                stall_s = time.monotonic() - self._beat - self.beat_s
                if stall_s >= self.stall_s:
                    self._report(stall_s, steal_s() - self._steal_at_beat, loop_thread)
        finally:
            stopped.set()
            await asyncio.to_thread(watcher.join)

    def _report(self, stall_s: float, steal: float, loop_thread: str) -> None:
        self.stalls += 1
        self.longest_stall_s = max(self.longest_stall_s, stall_s)
        _LOGGER.warning(
            "The event loop went on after a stall of %.2f s (audio was late for every "
            "room); the stacks of every thread during it are above, after 'Timeout'; the "
            "loop's is '%s'; the host took %.2f s of this machine's CPU time meanwhile "
            "(steal; about the stall's length or more: the host held the machine up)",
            stall_s, loop_thread, steal,
        )  # fmt: skip

    def _rearm_while_beating(self, stacks: TextIO, stopped: threading.Event) -> None:
        """The watcher thread. It arms the timer for `stall_s - beat_s`: it sees a beat
        up to `beat_s` late, so every stall of `stall_s` or more has its stacks. It also
        notes the host's steal at each beat, for the stall's report."""
        seen = None
        try:
            while not stopped.is_set():
                if self._beat != seen:
                    seen = self._beat
                    faulthandler.dump_traceback_later(self.stall_s - self.beat_s, file=stacks)
                    self._steal_at_beat = steal_s()
                stopped.wait(self.beat_s)
        finally:
            faulthandler.cancel_dump_traceback_later()


def steal_s() -> float:
    """CPU time the hypervisor has taken from this machine since boot, in seconds (the
    `steal` column of Linux's /proc/stat); 0 where there is no such file."""
    try:
        with _PROC_STAT.open(encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return int(fields[8]) / _TICKS_PER_S if len(fields) > 8 else 0.0


def loop_thread_name() -> str:
    """How `faulthandler` names the calling thread in its stacks."""
    return f"Thread 0x{threading.get_ident():016x}"
