"""Who is told what: the subscribed control connections, the satellites' records, and
the questions the server asks Home Assistant.

Pushes never wait for a subscriber: each has a bounded queue written by a task of its
own. One that falls `MAX_QUEUED_PUSHES` behind has its connection closed: left open
without its pushes, it would go on as if it knew the server's state; closed, Home
Assistant's integration reconnects and gets the whole state again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from wyoming.event import Event, Eventable

from ..protocol import WriteEvent
from ..protocol.control import HomeAnswer, HomeRequest, SatelliteRecord

_LOGGER = logging.getLogger(__name__)

MAX_QUEUED_PUSHES = 256
HOME_ANSWER_TIMEOUT_S = 5.0


class Subscriber:
    def __init__(
        self,
        name: str,
        write: WriteEvent,
        disconnect: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.name = name
        self._queue: asyncio.Queue[Event] = asyncio.Queue(MAX_QUEUED_PUSHES)
        self._write = write
        self._disconnect = disconnect
        self._on_lost = on_lost
        self._task = asyncio.create_task(self._send(), name="control pushes")

    def push(self, event: Event) -> bool:
        """Queue `event`; False when the subscriber is too far behind to go on."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    async def _send(self) -> None:
        try:
            while True:
                await self._write(await self._queue.get())
        except (ConnectionError, OSError):
            self._on_lost()

    def drop(self) -> None:
        """Close the subscriber's connection and send it nothing more."""
        self._disconnect()
        self._task.cancel()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class ControlHub:
    def __init__(self) -> None:
        self.satellites: dict[str, SatelliteRecord] = {}
        self._subscribers: set[Subscriber] = set()
        self._home_answers: dict[str, asyncio.Future[str | None]] = {}

    @property
    def subscribed(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self, name: str, write: WriteEvent, disconnect: Callable[[], None]) -> Subscriber:
        """A new subscriber: `name` says who it is in the log, `write` sends it an event,
        `disconnect` closes its connection (when it falls behind)."""
        subscriber: Subscriber | None = None

        def lost() -> None:
            if subscriber is not None:
                self._subscribers.discard(subscriber)

        subscriber = Subscriber(name, write, disconnect, lost)
        self._subscribers.add(subscriber)
        return subscriber

    async def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        await subscriber.close()

    def push(self, message: Eventable) -> None:
        event = message.event()
        for subscriber in list(self._subscribers):
            if not subscriber.push(event):
                _LOGGER.warning(
                    "Control connection %s fell %d pushes behind; closing it (it reconnects "
                    "and gets the whole state again)", subscriber.name, MAX_QUEUED_PUSHES,
                )  # fmt: skip
                self._subscribers.discard(subscriber)
                subscriber.drop()

    def update_satellite(self, record: SatelliteRecord) -> None:
        self.satellites[record.name] = record
        self.push(record)

    async def ask_home(
        self, text: str, language: str, satellite: str, area: str | None, conversation_id: str
    ) -> str | None:
        """Home Assistant's spoken answer to `text`, or None: not handled, nobody to ask, or
        no answer within HOME_ANSWER_TIMEOUT_S."""
        if not self._subscribers:
            return None
        request_id = uuid.uuid4().hex
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._home_answers[request_id] = answer
        self.push(HomeRequest(request_id, text, language, satellite, area, conversation_id))
        try:
            return await asyncio.wait_for(answer, HOME_ANSWER_TIMEOUT_S)
        except TimeoutError:
            _LOGGER.warning("Home Assistant gave no answer within %g s", HOME_ANSWER_TIMEOUT_S)
            return None
        finally:
            self._home_answers.pop(request_id, None)

    def home_answer(self, answer: HomeAnswer) -> bool:
        """Home Assistant answered; False when no question has this id (any more)."""
        waiting = self._home_answers.get(answer.request_id)
        if waiting is None or waiting.done():
            return False
        waiting.set_result(answer.speech if answer.handled else None)
        return True

    async def close(self) -> None:
        for subscriber in list(self._subscribers):
            await self.unsubscribe(subscriber)
