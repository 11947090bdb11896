"""The output of a child process (a server, a satellite), line by line as it comes."""

from __future__ import annotations

import asyncio

STALL_MARK = "The event loop went on after a stall"
"""How the server's loop watch (`locara_wyoming/loop_watch.py`) reports a stall."""
STACKS_MARK = "Timeout ("
"""How `faulthandler` begins the stacks it writes during a stall."""
MAX_STACK_LINES = 120


class LogLines(list[str]):
    """The lines so far, and a way to wait for one: a line can reach us later than an
    effect of it (a closed socket), since it comes through the child's pipe."""

    def __init__(self) -> None:
        super().__init__()
        self._new_line = asyncio.Event()

    def add(self, raw: bytes) -> str:
        line = raw.decode(errors="replace").rstrip()
        self.append(line)
        self._new_line.set()
        return line

    def matching(self, text: str) -> list[str]:
        return [line for line in self if text in line]

    def stalls(self, most: int = 3) -> list[list[str]]:
        """The first `most` stalls the server's loop watch reported: each its warning,
        after the stacks that `faulthandler` wrote during it (what held the loop)."""
        reports = []
        for index, line in enumerate(self):
            if STALL_MARK not in line:
                continue
            start = index
            while start > max(0, index - MAX_STACK_LINES) and not self[start].startswith(
                STACKS_MARK
            ):
                start -= 1
            reports.append(self[start : index + 1])
            if len(reports) == most:
                break
        return reports

    async def wait_for(self, text: str, count: int = 1, timeout_s: float = 60.0) -> str:
        """The `count`-th line holding `text`; TimeoutError after `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while len(found := self.matching(text)) < count:
                self._new_line.clear()
                await self._new_line.wait()
        return found[count - 1]
