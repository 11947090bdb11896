"""A few llama.cpp contexts over one GGUF, each keeping one conversation's prompt.

llama.cpp reads a prompt once and keeps it (the KV cache); a next prompt that starts
the same only has its new words read. One context serves one conversation at a time,
so with several rooms on one context each turn read its whole history again after
another room's turn. Here each conversation keeps the context it last used while it
can: a free context goes to a conversation without one, the least recently used
first. The weights are mmapped and shared by the page cache; each context costs
its own KV cache and buffers (~70 MB with SmolLM2-135M at 2048 tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from ..workers import ModelBusyError


@dataclass(eq=False)
class _Context:
    llama: Any
    conversation: str | None = None
    """Whose prompt this context last read."""
    leased: bool = False
    last_used: float = 0.0


class LlamaContexts:
    def __init__(self, contexts: list[Any], wait_s: float) -> None:
        self.wait_s = wait_s
        self._contexts = [_Context(llama) for llama in contexts]
        self._waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self._contexts)

    @contextlib.asynccontextmanager
    async def lease(self, conversation_id: str | None) -> AsyncIterator[Any]:
        """A context for `conversation_id` (its own when it has one), waiting at most
        `wait_s` while every context is in use."""
        try:
            async with asyncio.timeout(self.wait_s):
                while (context := self._free_for(conversation_id)) is None:
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.append(waiter)
                    await waiter
        except TimeoutError:
            raise ModelBusyError(
                f"llm: all {len(self)} contexts stayed busy for {self.wait_s:.0f} s; "
                "try again later"
            ) from None
        with self._holding(context, conversation_id):
            yield context.llama

    @contextlib.contextmanager
    def own_if_free(self, conversation_id: str) -> Iterator[Any | None]:
        """The conversation's own context if it is free now, else None; never another's
        (work that may wait, such as a prefill, must not take a room's context)."""
        context = self._own(conversation_id)
        if context is None or context.leased:
            yield None
            return
        with self._holding(context, conversation_id):
            yield context.llama

    def _own(self, conversation_id: str | None) -> _Context | None:
        if conversation_id is None:
            return None
        return next((c for c in self._contexts if c.conversation == conversation_id), None)

    def _free_for(self, conversation_id: str | None) -> _Context | None:
        own = self._own(conversation_id)
        if own is not None:
            # Busy with this conversation's own work (a prefill, a reply being
            # cancelled), which ends soon: less than reading its history elsewhere.
            return None if own.leased else own
        free = [context for context in self._contexts if not context.leased]
        return min(free, key=lambda c: (c.conversation is not None, c.last_used), default=None)

    @contextlib.contextmanager
    def _holding(self, context: _Context, conversation_id: str | None) -> Iterator[None]:
        context.leased = True
        context.conversation = conversation_id
        try:
            yield
        finally:
            context.leased = False
            context.last_used = time.monotonic()
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
