"""A control-channel client for the tests: it proves itself with the token as Home
Assistant's integration does (TLS, then the exchange in protocol/auth.py), then sends
requests with ids and keeps the pushes in order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from wyoming.event import Event

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.protocol.auth import ROLE_CONTROL, SecureTcpClient, token_key
from locara_wyoming.security.identity import read_token

HomeAnswerer = Callable[[dict[str, Any]], Awaitable[tuple[bool, str | None]]]


def token_of(server: ServerProcess) -> str:
    """The server's token, as whoever installs it copies it into Home Assistant."""
    return read_token(server.workdir / "data")


class ControlClient:
    def __init__(self, host: str, port: int, token: str) -> None:
        self.token = token
        self.pushes: list[Event] = []
        self.home_requests: list[dict[str, Any]] = []
        self.answer_home: HomeAnswerer | None = None
        self._client = SecureTcpClient(host, port)
        self._ids = itertools.count(1)
        self._answers: dict[str, asyncio.Future[Event]] = {}
        self._new_push = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()
        self.state: dict[str, Any] = {}

    async def connect(self) -> dict[str, Any]:
        await self._client.connect()
        await self._client.authenticate(ROLE_CONTROL, "tests", token_key(self.token))
        self._reader = asyncio.create_task(self._read())
        answer = await self.request("locara-control", client="tests")
        self.state = answer.data
        return self.state

    async def request(
        self, event_type: str, escaped: bool = False, payload: bytes | None = None, **data: Any
    ) -> Event:
        """The answer to a request: its `-done` event, the state, or its `error`.

        `escaped`: written as JSON with escapes, as the `wyoming` package cannot (it has
        no way to send a lone surrogate, which JSON can carry)."""
        request_id = str(next(self._ids))
        answer: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = answer
        event = Event(type=event_type, data={"id": request_id, **data}, payload=payload)
        if escaped:
            assert self._client._writer is not None
            self._client._writer.write(json.dumps(event.to_dict()).encode() + b"\n")
        else:
            await self._client.write_event(event)
        try:
            return await asyncio.wait_for(answer, 120)
        finally:
            self._answers.pop(request_id, None)

    async def _read(self) -> None:
        while (event := await self._client.read_event()) is not None:
            request_id = event.data.get("id", event.data.get("request_id"))
            if event.type == "locara-control-state" and "1" in self._answers:
                self._answers["1"].set_result(event)
            elif event.type == "locara-home-request":
                self.home_requests.append(event.data)
                task = asyncio.create_task(self._answer_home(event.data))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
            elif event.type.endswith("-done") or event.type == "error":
                future = self._answers.get(str(request_id))
                if future is not None and not future.done():
                    future.set_result(event)
            else:
                self.pushes.append(event)
                self._new_push.set()

    async def _answer_home(self, request: dict[str, Any]) -> None:
        if self.answer_home is None:
            return
        handled, speech = await self.answer_home(request)
        await self._client.write_event(
            Event(
                type="locara-home-answer",
                data={"id": request["id"], "handled": handled, "speech": speech},
            )
        )

    async def push(
        self, event_type: str, match: Callable[[dict[str, Any]], bool], timeout_s: float = 60.0
    ) -> dict[str, Any]:
        """The first push of `event_type` whose data matches, waiting for it."""
        async with asyncio.timeout(timeout_s):
            while True:
                for event in self.pushes:
                    if event.type == event_type and match(event.data):
                        return event.data
                self._new_push.clear()
                await self._new_push.wait()

    async def status(self) -> dict[str, Any]:
        """`locara-status` as Home Assistant's proven connection sees it: every session."""
        self.pushes[:] = [event for event in self.pushes if event.type != "locara-status"]
        await self._client.write_event(Event("locara-status"))
        return await self.push("locara-status", lambda data: True, timeout_s=10)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._reader
        await self._client.disconnect()


@contextlib.asynccontextmanager
async def control(host: str, port: int, token: str) -> AsyncIterator[ControlClient]:
    client = ControlClient(host, port, token)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()
