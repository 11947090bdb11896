"""Run blocking model calls off the event loop, with bounded concurrency and priorities.

Every model gets one `ModelWorker`: a pool of `concurrency` threads and a gate of the
same size. A request over capacity waits up to `wait_s` and then fails with
`ModelBusyError`, so nothing ever hangs on a busy model.

Waiters are served by `Priority`: the first pieces of a turn (its transcription, its
reply's first clause and that clause's speech) before the later pieces of any reply,
and those before work nobody waits for; first come, first served within a priority.
Priorities hold across models too: on a small machine every model runs on the same
cores, and two at once slow each other down (SmolLM2 writing beside Piper: 5x slower
tokens, measured on 2 cores). So besides its model's slot, work waits until no more
urgent work runs or waits on any model of the process (`_Precedence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import IntEnum
from typing import ClassVar, TypeVar

from .errors import Busy

T = TypeVar("T")

_END = object()


class ModelBusyError(Busy):
    """A model stayed busy longer than the configured wait."""


class Priority(IntEnum):
    FIRST = 0
    """A turn's first pieces: its transcription, its reply's first clause and its speech."""
    LATER = 1
    """The rest of a reply, which is heard after the first pieces anyway."""
    IDLE = 2
    """Work nobody waits for, done while the models are otherwise idle (a prefill)."""


class Urgency:
    """The priority of a stream's next items, which its reader may lower as it goes (a
    reply's text is FIRST until its first clause is out)."""

    def __init__(self, priority: Priority = Priority.FIRST) -> None:
        self.priority = priority


class _Gate:
    """`size` slots, handed to waiters by priority, then by arrival: a ticket drawn when
    the waiter came, or earlier (when its stream began)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: list[tuple[Priority, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    def ticket(self) -> int:
        return next(self._arrivals)

    async def acquire(self, priority: Priority, ticket: int | None = None) -> None:
        if self._free and not self._waiters:
            self._free -= 1
            return
        granted = asyncio.get_running_loop().create_future()
        entry = (priority, self.ticket() if ticket is None else ticket, granted)
        heapq.heappush(self._waiters, entry)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # handed over just as the wait ended: pass it on
            elif entry in self._waiters:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, granted = heapq.heappop(self._waiters)
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1


class _Precedence:
    """Work in progress (running or waiting) by priority, over all models of one loop."""

    def __init__(self) -> None:
        self._active = [0] * len(Priority)
        self._waiters: list[asyncio.Future[None]] = []

    def enter(self, priority: Priority) -> None:
        self._active[priority] += 1

    def leave(self, priority: Priority) -> None:
        self._active[priority] -= 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_turn(self, priority: Priority) -> None:
        """Until no more urgent work runs or waits."""
        while any(self._active[:priority]):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    @contextlib.contextmanager
    def holding(self, priority: Priority) -> Iterator[None]:
        self.enter(priority)
        try:
            yield
        finally:
            self.leave(priority)


_PRECEDENCE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Precedence] = (
    weakref.WeakKeyDictionary()
)


class ModelWorker:
    calls_ended: ClassVar[int] = 0
    """Model calls ended in this process, all models together (the memory releaser
    hands back what they freed). Counted on the event loop, so it needs no lock."""

    def __init__(
        self, name: str, concurrency: int, wait_s: float, shares_cores: bool = True
    ) -> None:
        """`shares_cores` is False for a model elsewhere (a remote service): its work
        neither waits for the work of the models here nor holds it up."""
        self.name = name
        self.wait_s = wait_s
        self.shares_cores = shares_cores
        self._gate = _Gate(concurrency)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name)

    def slot(
        self, priority: Priority = Priority.FIRST
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the model's slots, waiting at most `wait_s` for it and for more
        urgent work on any model to end."""
        return self._slot(priority, None)

    @contextlib.asynccontextmanager
    async def _slot(self, priority: Priority, ticket: int | None) -> AsyncIterator[None]:
        precedence = self._precedence()
        with precedence.holding(priority):
            try:
                async with asyncio.timeout(self.wait_s):
                    await precedence.wait_for_turn(priority)
                    await self._gate.acquire(priority, ticket)
            except TimeoutError:
                raise ModelBusyError(
                    f"{self.name} stayed busy for {self.wait_s:.0f} s; try again later"
                ) from None
            try:
                yield
            finally:
                self._gate.release()
                ModelWorker.calls_ended += 1

    def _precedence(self) -> _Precedence:
        if not self.shares_cores:
            return _Precedence()  # one of its own, which no other work sees
        return _PRECEDENCE.setdefault(asyncio.get_running_loop(), _Precedence())

    async def in_thread(self, function: Callable[[], T]) -> T:
        """Run `function` in one of the model's threads; the caller holds a `slot()`.

        Cancelled, it still waits for the thread to finish, so that the slot is never
        freed while the model is at work."""
        running = asyncio.get_running_loop().run_in_executor(self._executor, function)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await running
            raise

    async def call(self, function: Callable[[], T], priority: Priority = Priority.FIRST) -> T:
        """Run `function` in one of the model's threads."""
        async with self.slot(priority):
            return await self.in_thread(function)

    async def stream(
        self, make_items: Callable[[], Iterator[T]], priority: Priority = Priority.FIRST
    ) -> AsyncGenerator[T, None]:
        """Iterate a blocking generator in a model thread, yielding each item as it comes.

        The slot is held for the whole generator. When the consumer stops early
        (cancelled, or leaves the loop), the thread stops at the next item and the slot
        is held until it has, so the model is never shared.
        """
        async with self.slot(priority):
            loop = asyncio.get_running_loop()
            items: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
            stop = False

            def post(item: object, error: BaseException | None = None) -> None:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(items.put_nowait, (item, error))

            def produce() -> None:
                try:
                    for item in make_items():
                        if stop:
                            break
                        post(item)
                except BaseException as error:
                    post(_END, error)
                else:
                    post(_END)

            producer = loop.run_in_executor(self._executor, produce)
            try:
                while True:
                    item, error = await items.get()
                    if error is not None:
                        raise error
                    if item is _END:
                        break
                    yield item  # type: ignore[misc]
            finally:
                stop = True
                with contextlib.suppress(BaseException):
                    await producer

    async def stream_each(
        self,
        make_items: Callable[[], Generator[T, None, None]],
        priority: Priority | Urgency = Priority.FIRST,
    ) -> AsyncGenerator[T, None]:
        """Iterate a blocking generator whose items are independent model calls (Piper's
        sentences, an LLM's tokens on a context of their own): each item is made in a
        model thread when it is asked for, holding a slot only while it is made.

        A consumer that pauses then has nothing made ahead and holds no slot, and other
        requests go between its items (by priority), where `stream` keeps the model for
        the whole generator. The stream keeps its place among other models' work while
        it lasts, at the urgency's priority as of its latest item.

        Among streams at FIRST priority the one that began first goes first: of four
        rooms asking at once, one has its first clause after one clause's time, not all
        four after four. At other priorities each item queues anew: rooms take turns.
        """
        urgency = priority if isinstance(priority, Urgency) else Urgency(priority)
        precedence = self._precedence()
        held = urgency.priority
        precedence.enter(held)
        began = self._gate.ticket()
        items = make_items()
        try:
            while True:
                if urgency.priority != held:
                    precedence.enter(urgency.priority)
                    precedence.leave(held)
                    held = urgency.priority
                ticket = began if held is Priority.FIRST else None
                async with self._slot(held, ticket):
                    item = await self.in_thread(lambda: next(items, _END))
                if item is _END:
                    break
                yield item  # type: ignore[misc]
        finally:
            precedence.leave(held)
            # Cheap once suspended; still running in its thread (cancelled twice while
            # an item was being made), it finishes that item and is then dropped.
            with contextlib.suppress(ValueError):
                items.close()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
