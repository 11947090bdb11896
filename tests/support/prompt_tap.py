"""A TCP relay in front of an OpenAI-compatible endpoint that keeps each chat request.

Bytes pass through unchanged both ways; the requests' JSON bodies are parsed on the
side, so a test sees exactly which messages the server sent to the real model. During
an `outage()` the endpoint is unreachable, as when its machine goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import urlsplit

Parser = Generator[None, bytes, None]


class PromptTap:
    def __init__(self, endpoint_url: str) -> None:
        self._endpoint = urlsplit(endpoint_url)
        self._server: asyncio.Server | None = None
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        """The endpoint's URL through the tap, once started."""
        self._down = False
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = self._endpoint._replace(netloc=f"127.0.0.1:{port}").geturl()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def chats(self) -> list[list[dict[str, str]]]:
        """The `messages` of every chat completion request so far, in order."""
        return [r["messages"] for r in self.requests if "messages" in r]

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Inside the block the endpoint is gone: the connections open to it are cut, and
        new ones are closed as soon as they are made."""
        self._down = True
        for client in self._clients:
            client.transport.abort()
        try:
            yield
        finally:
            self._down = False

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            writer.transport.abort()
            return
        self._clients.add(writer)
        target = (self._endpoint.hostname, self._endpoint.port)
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        requests = asyncio.create_task(self._pipe(reader, upstream_writer, self._parse()))
        try:
            await self._pipe(upstream_reader, writer, None)
        finally:
            self._clients.discard(writer)
            requests.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await requests

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        parser: Parser | None,
    ) -> None:
        if parser is not None:
            next(parser)
        try:
            while data := await source.read(65536):
                if parser is not None:
                    parser.send(data)
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()

    def _parse(self) -> Parser:
        """A generator fed the client's bytes: HTTP/1.1 requests with a Content-Length body."""
        buffer = b""
        while True:
            buffer += yield
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                head = buffer[:end].decode("latin-1").lower().split("\r\n")
                length = next(
                    (int(h.split(":", 1)[1]) for h in head if h.startswith("content-length:")), 0
                )
                if len(buffer) < end + 4 + length:
                    break
                body, buffer = buffer[end + 4 : end + 4 + length], buffer[end + 4 + length :]
                if body:
                    self.requests.append(json.loads(body))
