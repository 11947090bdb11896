"""Run a voice session from any async audio source to any async audio sink.

Used by satellites, the tests and the benchmark. It needs only the base install
(wyoming, numpy, soxr): no model runtime.

    client = SessionClient(uri, SessionRequest(name="kitchen"), source, sink, on_event=print)
    await client.run()

The source yields PCM chunks, paced as a microphone would; the sink plays the
replies and says how much of each it played. `on_event` sees every downlink event
other than audio (voice activity, both sides' text, flushes, errors) as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol
from urllib.parse import urlparse

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.ping import Ping
from wyoming.pipeline import PipelineStage, RunPipeline

from ..audio_format import PcmFormat
from ..audio_pace import AudioPace
from ..errors import Unauthorized
from ..protocol.auth import ROLE_SATELLITE, AuthError, PairingCode, SecureTcpClient
from ..protocol.session import REQUEST_KEY, Flush, PlayedReport, SessionRequest, SessionStarted

_LOGGER = logging.getLogger(__name__)

UPLINK_SPEED = 1.25
UPLINK_BURST_S = 1.0
"""How fast the microphone goes out: well within the server's 1.5 times real time and
2 s burst (audio_pace.py), and fast enough that audio kept back by a reconnection
catches up (a second of it at once, then a second more in every four)."""


class AudioSource(Protocol):
    format: PcmFormat

    def chunks(self) -> AsyncIterator[bytes]:
        """PCM in `format`, paced in real time; ends when the source is exhausted."""
        ...


class AudioSink(Protocol):
    async def start_reply(self, reply_id: str, audio: PcmFormat) -> None: ...

    async def write(self, reply_id: str, pcm: bytes) -> None: ...

    async def finish_reply(self, reply_id: str) -> int:
        """Wait until the reply has played out; return the samples played."""
        ...

    def flush(self, reply_id: str) -> int:
        """Stop the reply now, dropping what is buffered; return the samples played."""
        ...


class SessionFailedError(RuntimeError):
    pass


class NotProvenError(SessionFailedError):
    """The server could not prove itself to be the one the satellite was paired with,
    or refused the satellite's proof: no audio was sent."""

    def __init__(self, text: str, refused: bool) -> None:
        super().__init__(text)
        self.refused = refused
        """The server refused the satellite (`unauthorized`): it has no such satellite
        enrolled any more. False: the server did not prove itself (another certificate,
        id or key)."""


class SessionClient:
    def __init__(
        self,
        uri: str,
        request: SessionRequest,
        source: AudioSource,
        sink: AudioSink,
        on_event: Callable[[Event], None] | None = None,
        idle_after_s: float = 3.0,
        ping_every_s: float = 5.0,
        credential: PairingCode | None = None,
    ) -> None:
        self.uri = uri
        self.request = request
        self.credential = credential
        """An enrolled satellite's: the session opens only over TLS, after the server
        proved itself (its pinned certificate and id, and the key) and the satellite did."""
        self.source = source
        self.sink = sink
        self.on_event = on_event
        self.idle_after_s = idle_after_s
        """After the source ends, silence is sent until nothing has happened for this long."""
        self.ping_every_s = ping_every_s
        """A source that sends nothing for this long (no conversation open) sends a ping."""
        self.started: SessionStarted | None = None
        self.ready = asyncio.Event()
        """Set once the server has answered with the session's parameters."""
        self._client: AsyncClient | None = None
        self._write_lock = asyncio.Lock()
        self._finishing: dict[str, asyncio.Task[None]] = {}
        self._last_activity = time.monotonic()
        self._last_write = time.monotonic()
        self._reply_open = False
        self._stopping = False
        self._unfinished: set[str] = set()  # replies received that have not played out

    async def run(self) -> SessionStarted:
        """Connect, stream the whole source, wait for the last reply, and end cleanly.

        Raises SessionFailedError (or OSError) when the server refuses the session or the
        connection is lost; replies not yet played are then dropped from the sink.
        """
        async with self._connect() as client:
            self._client = client
            self.started = await self._open(client)
            self.ready.set()
            downlink = asyncio.create_task(self._receive(client), name="session downlink")
            uplink = asyncio.create_task(self._send_audio(), name="session uplink")
            keepalive = asyncio.create_task(self._keep_alive(), name="session keep-alive")
            try:
                await asyncio.wait([uplink, downlink], return_when=asyncio.FIRST_COMPLETED)
                if not uplink.done():
                    downlink.result()  # the downlink's error, if it had one
                    raise SessionFailedError("the server closed the connection")
                uplink.result()
            finally:
                for task in (uplink, downlink, keepalive, *self._finishing.values()):
                    task.cancel()
                await asyncio.gather(uplink, downlink, keepalive, return_exceptions=True)
                for reply_id in self._unfinished:
                    self.sink.flush(reply_id)
                self._client = None
        return self.started

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncClient]:
        """A connection to the server; for an enrolled satellite, a proven one."""
        credential = self.credential
        if credential is None:
            async with AsyncClient.from_uri(self.uri) as client:
                yield client
            return
        address = urlparse(self.uri)
        if address.scheme != "tcp" or address.hostname is None or address.port is None:
            raise SessionFailedError(f"an enrolled satellite connects over tcp://, not {self.uri}")
        async with SecureTcpClient(address.hostname, address.port) as client:
            try:
                await client.authenticate(
                    ROLE_SATELLITE, credential.name, credential.key,
                    fingerprint=credential.fingerprint, server_id=credential.server_id,
                )  # fmt: skip
            except AuthError as error:
                refused = error.code == Unauthorized.code
                raise NotProvenError(str(error), refused) from None
            yield client

    async def send(self, event: Event) -> bool:
        """Send an event of the satellite's own (state, wake word…); False when not connected."""
        if self._client is None or not self.ready.is_set():
            return False
        try:
            await self._write(event)
        except (ConnectionError, OSError):
            return False
        return True

    async def _write(self, event: Event) -> None:
        assert self._client is not None
        async with self._write_lock:
            await self._client.write_event(event)
            self._last_write = time.monotonic()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.ping_every_s / 4)
            if time.monotonic() - self._last_write >= self.ping_every_s:
                await self._write(Ping().event())

    async def _open(self, client: AsyncClient) -> SessionStarted:
        run = RunPipeline(
            start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS, restart_on_end=True
        ).event()
        run.data[REQUEST_KEY] = self.request.to_dict()
        await client.write_event(run)
        while True:
            event = await client.read_event()
            if event is None:
                raise SessionFailedError("the server closed the connection")
            if Error.is_type(event.type):
                raise SessionFailedError(Error.from_event(event).text)
            if SessionStarted.is_type(event.type):
                if self.on_event is not None:
                    self.on_event(event)
                return SessionStarted.from_event(event)

    async def _send_audio(self) -> None:
        audio = self.source.format
        await self._write(AudioStart(audio.rate, audio.width, audio.channels).event())
        chunk_bytes = audio.frame_bytes * audio.rate // 50
        pace = AudioPace(UPLINK_SPEED, UPLINK_BURST_S)
        began = time.monotonic()
        sent = 0
        async for pcm in self.source.chunks():
            seconds = len(pcm) / audio.bytes_per_second
            if (wait_s := pace.wait_s(seconds)) > 0:  # a source faster than a microphone
                await asyncio.sleep(wait_s)
            pace.take(seconds)
            await self._write(AudioChunk(audio.rate, audio.width, audio.channels, pcm).event())
            sent += len(pcm)
        # A microphone does not stop at the end of a file: keep "listening" to silence
        # until the last turn has been answered and played. A source faster than real
        # time (a file through `cat`) counts as ending when its audio would have: the
        # server is still hearing it.
        spoken_until = began + sent / audio.bytes_per_second
        self._last_activity = max(self._last_activity, spoken_until)
        silence = bytes(chunk_bytes)
        while not self._stopping and (
            self.busy() or time.monotonic() - self._last_activity < self.idle_after_s
        ):
            await self._write(AudioChunk(audio.rate, audio.width, audio.channels, silence).event())
            await asyncio.sleep(0.02)
        await self._write(AudioStop().event())

    def stop(self) -> None:
        """End the session once the source is done, without waiting for replies to play."""
        self._stopping = True

    def busy(self) -> bool:
        """Whether a reply is being made, or received audio has not yet played out."""
        return self._reply_open or any(not t.done() for t in self._finishing.values())

    async def _receive(self, client: AsyncClient) -> None:
        current_reply: str | None = None
        while (event := await client.read_event()) is not None:
            self._last_activity = time.monotonic()
            if AudioChunk.is_type(event.type):
                if current_reply is not None:
                    await self.sink.write(current_reply, AudioChunk.from_event(event).audio)
                continue
            if AudioStart.is_type(event.type):
                start = AudioStart.from_event(event)
                current_reply = str(event.data.get("reply_id", ""))
                self._unfinished.add(current_reply)
                await self.sink.start_reply(
                    current_reply, PcmFormat(start.rate, start.width, start.channels)
                )
            elif AudioStop.is_type(event.type) and current_reply is not None:
                reply_id, current_reply = current_reply, None
                self._finishing[reply_id] = asyncio.create_task(self._report_when_played(reply_id))
            elif Flush.is_type(event.type):
                self._flush(Flush.from_event(event).reply_id)
                if current_reply == Flush.from_event(event).reply_id:
                    current_reply = None
            elif event.type == "handled-start":
                self._reply_open = True
            elif event.type == "handled-stop":
                self._reply_open = False
            if self.on_event is not None:
                self.on_event(event)

    async def _report_when_played(self, reply_id: str) -> None:
        samples = await self.sink.finish_reply(reply_id)
        self._unfinished.discard(reply_id)
        self._last_activity = time.monotonic()
        await self._write(PlayedReport(reply_id, samples).event())

    def _flush(self, reply_id: str) -> None:
        finishing = self._finishing.pop(reply_id, None)
        if finishing is not None:
            finishing.cancel()
        samples = self.sink.flush(reply_id)
        self._unfinished.discard(reply_id)
        asyncio.get_running_loop().create_task(self._write(PlayedReport(reply_id, samples).event()))
