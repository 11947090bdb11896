"""Run blocking model calls off the event loop, with bounded concurrency per model.

Every model gets one `ModelWorker`: a pool of `concurrency` threads and a gate of the
same size. A request over capacity waits up to `wait_s` and then fails with
`ModelBusyError`, so nothing ever hangs on a busy model.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, TypeVar

T = TypeVar("T")

_END = object()


class ModelBusyError(Exception):
    """A model stayed busy longer than the configured wait."""


class ModelWorker:
    calls_ended: ClassVar[int] = 0
    """Model calls ended in this process, all models together (the memory releaser
    hands back what they freed). Counted on the event loop, so it needs no lock."""

    def __init__(self, name: str, concurrency: int, wait_s: float) -> None:
        self.name = name
        self.wait_s = wait_s
        self._gate = asyncio.Semaphore(concurrency)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name)

    def busy(self) -> bool:
        """Whether every slot is taken (or waited for) right now."""
        return self._gate.locked()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the model's slots, waiting at most `wait_s` for it."""
        try:
            await asyncio.wait_for(self._gate.acquire(), self.wait_s)
        except TimeoutError:
            raise ModelBusyError(
                f"{self.name} stayed busy for {self.wait_s:.0f} s; try again later"
            ) from None
        try:
            yield
        finally:
            self._gate.release()
            ModelWorker.calls_ended += 1

    async def call(self, function: Callable[[], T]) -> T:
        """Run `function` in one of the model's threads."""
        async with self.slot():
            return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def stream(
        self, make_items: Callable[[], Iterator[T]], max_ahead: int | None = None
    ) -> AsyncGenerator[T, None]:
        """Iterate a blocking generator in a model thread, yielding each item as it comes.

        With `max_ahead`, the thread waits while that many items are not yet taken: a
        consumer that pauses pauses the model too, and frees the CPU for other stages.
        When the consumer stops early (cancelled, or leaves the loop), the thread stops at
        the next item and the slot is held until it has, so the model is never shared.
        """
        async with self.slot():
            loop = asyncio.get_running_loop()
            items: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
            stop = threading.Event()
            room = threading.Semaphore(max_ahead) if max_ahead else None

            def post(item: object, error: BaseException | None = None) -> None:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(items.put_nowait, (item, error))

            def produce() -> None:
                try:
                    for item in make_items():
                        while room is not None and not room.acquire(timeout=0.05):
                            if stop.is_set():
                                return
                        if stop.is_set():
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
                    if room is not None:
                        room.release()
                    yield item  # type: ignore[misc]
            finally:
                stop.set()
                with contextlib.suppress(BaseException):
                    await producer

    async def stream_each(
        self, make_items: Callable[[], Generator[T, None, None]]
    ) -> AsyncGenerator[T, None]:
        """Iterate a blocking generator whose items are independent model calls (Piper's
        sentences): each item is made in a model thread when it is asked for, holding a
        slot only while it is made. A consumer that pauses (a client that stops reading)
        then has nothing made ahead and holds no slot, and other requests go between its
        items, where `stream` keeps the model for the whole generator."""
        items = make_items()
        try:
            while (item := await self.call(lambda: next(items, _END))) is not _END:
                yield item  # type: ignore[misc]
        finally:
            # Cheap once suspended; still running in its thread (the consumer was
            # cancelled mid-item), it finishes that item and is then dropped.
            with contextlib.suppress(ValueError):
                items.close()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
