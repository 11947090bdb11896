"""Hand the memory that model calls free back to the system.

A synthesis or a transcription allocates its working buffers for each call, sized by
its input, and frees them when it ends. glibc's malloc keeps freed memory in its arenas
for reuse and returns little of it, so the server's resident memory climbs to the peak
of the largest calls each arena has seen and stays there. `malloc_trim(0)` returns the
free pages of every arena. The releaser calls it off the event loop a moment after
model work has ended, at most once per `interval_s`, and never while the server is idle.

Measured with the embedded models in one process by an ad-hoc script, not kept (2-core
VM, 2026-12-01; `tests/test_memory_release.py` and `bench soak` show it repeatably): 560 MB
after start; after sentences of up to 22 s of speech and transcriptions of up to 28 s,
1115 MB, and no lower after that. With Piper's own arena off (`stages/tts.py`) and
`malloc_trim` after each call: 500-535 MB throughout.

It is one libc call, so there is no library to reuse; on a C library without it (musl,
macOS) the releaser does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from .workers import ModelWorker

_LOGGER = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    # CDLL releases the interpreter lock for the call: other threads go on meanwhile.
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class MemoryReleaser:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.releases = 0
        """How many times memory was handed back (the tests read it)."""
        self._trim = _malloc_trim()

    @property
    def active(self) -> bool:
        return self._trim is not None and self.interval_s > 0

    async def run(self) -> None:
        """Until cancelled: after model calls have ended, hand back what they freed."""
        if not self.active:
            _LOGGER.debug("Not releasing memory (no malloc_trim, or turned off)")
            return
        assert self._trim is not None
        seen = ModelWorker.calls_ended
        while True:
            await asyncio.sleep(self.interval_s)
            if ModelWorker.calls_ended == seen:
                continue
            seen = ModelWorker.calls_ended
            await asyncio.to_thread(self._trim, 0)
            self.releases += 1
