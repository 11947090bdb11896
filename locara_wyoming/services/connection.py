"""One client connection: reads events safely and serves asr, tts and handle requests.

The reader never waits for a model: each request runs as a task, in order, while
the loop goes on reading (pings, the next text chunks, a disconnect). Bad input
gets an `error` event; input that breaks the framing also closes this one
connection. Nothing here can disturb another connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop
from wyoming.info import Describe, Info, SelectProgram
from wyoming.ping import Ping, Pong
from wyoming.pipeline import RunPipeline
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from ..audio_format import AudioFormatError, PcmFormat
from ..backends.base import BackendFullError
from ..backends.registry import Backends
from ..config import LocaraConfig
from ..connection.reader import ProtocolError, ReadLimits, read_event
from ..control.service import (
    CONTROL_TYPES,
    HOME_ANSWER,
    ControlClient,
    ControlService,
)
from ..conversation.agent import ConversationAgent
from ..errors import LocaraError
from ..protocol.session import (
    REQUEST_KEY,
    STATUS_TYPE,
    SessionRequest,
    SessionRequestError,
)
from ..sessions.link import UPLINK_TYPES, SessionEnded, SessionLink
from ..sessions.opening import open_session
from ..sessions.played_watch import PlayedWatch
from ..stages.loading import Stages
from ..stages.remote import RemoteServiceError
from ..stages.tts import VoiceNotFoundError
from ..workers import ModelBusyError
from .info import build_info
from .speech import StreamingSynthesis, speak
from .transcription import AudioTooLongError, Utterance, send_transcript

_LOGGER = logging.getLogger(__name__)

MAX_QUEUED_REQUESTS = 4


class RequestError(Exception):
    """A request that cannot be served; answered with an `error` event of `code`."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class ServerContext:
    """What every connection shares: the warm stages, configuration and the agent."""

    config: LocaraConfig
    """The configuration as it is now: the control channel replaces it when settings change."""
    stages: Stages
    agent: ConversationAgent
    info: Info
    backends: Backends
    control: ControlService
    sessions: dict[str, SessionLink] = field(default_factory=dict)

    def refresh_info(self) -> None:
        self.info = build_info(self.stages, self.config)

    @property
    def read_limits(self) -> ReadLimits:
        limits = self.config.limits
        return ReadLimits(limits.max_header_bytes, limits.max_data_bytes, limits.max_payload_bytes)


class WyomingConnection(AsyncEventHandler):
    def __init__(
        self,
        context: ServerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_close: Callable[[WyomingConnection], None] | None = None,
    ) -> None:
        super().__init__(reader, writer)
        self.context = context
        self._on_close = on_close
        self.peer = writer.get_extra_info("peername")
        self._limits = context.read_limits
        self._requests: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue(
            MAX_QUEUED_REQUESTS
        )
        self._worker: asyncio.Task[None] | None = None
        self._utterance: Utterance | None = None
        self._language: str | None = None
        self._stream: StreamingSynthesis | None = None
        self._link: SessionLink | None = None
        self._control = ControlClient(self.write_event)
        self._last_activity = time.monotonic()
        self._serving = False

    # -- reading ---------------------------------------------------------------

    async def run(self) -> None:
        """Like `AsyncEventHandler.run`, with the bounded reader and error answers."""
        self._worker = asyncio.create_task(self._serve_requests(), name=f"requests {self.peer}")
        try:
            while True:
                try:
                    event = await self._next_event()
                except ProtocolError as error:
                    _LOGGER.warning("%s: %s; closing", self.peer, error.text)
                    await self._send_error(error.code, error.text)
                    break
                except TimeoutError as timeout:
                    _LOGGER.info("%s: %s; closing", self.peer, timeout)
                    await self._send_error("timeout", str(timeout))
                    break
                if event is None:
                    break
                self._last_activity = time.monotonic()
                try:
                    if not await self.handle_event(event):
                        break
                except RequestError as error:
                    await self._send_error(error.code, error.text)
                except AudioFormatError as error:
                    await self._send_error("bad-audio-format", str(error))
                except SessionRequestError as error:
                    await self._send_error("bad-request", str(error))
                except LocaraError as error:
                    await self._send_error(error.code, error.text, event.data.get("id"))
                except (KeyError, TypeError, ValueError) as error:
                    await self._send_error("bad-event", f"bad {event.type!r} event: {error}")
        except (ConnectionError, OSError) as error:
            _LOGGER.debug("%s: connection lost: %s", self.peer, error)
        finally:
            await self.disconnect()
            self.writer.close()
            if self._on_close is not None:
                self._on_close(self)

    async def _next_event(self) -> Event | None:
        """The next whole event, or TimeoutError for a client that has gone quiet.

        A session must send something (audio, a ping) every `keepalive_s`; any other
        connection must finish an event within `idle_connection_s` unless one of its
        requests is being served (then it is waiting for us, not idling).
        """
        if self._link is not None:  # the hot path: audio 50 times a second
            keepalive = self.context.config.sessions.keepalive_s
            try:
                async with asyncio.timeout(keepalive):
                    return await read_event(self.reader, self._limits)
            except TimeoutError:
                raise TimeoutError(
                    f"no event within the keep-alive time ({keepalive:g} s)"
                ) from None
        if self._control.subscriber is not None:  # Home Assistant's integration: it waits
            return await read_event(self.reader, self._limits)
        limit = self.context.config.limits.idle_connection_s
        read = asyncio.ensure_future(read_event(self.reader, self._limits))
        try:
            while True:
                if self._serving or not self._requests.empty():
                    self._last_activity = time.monotonic()
                left = self._last_activity + limit - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no event within the idle time ({limit:g} s)")
                done, _ = await asyncio.wait([read], timeout=min(left, 1.0))
                if done:
                    return read.result()
        finally:
            read.cancel()

    async def write_event(self, event: Event) -> None:
        """Send an event; a client that stops reading is dropped rather than queued for."""
        limit = self.context.config.limits.stalled_client_s
        try:
            async with asyncio.timeout(limit):
                await super().write_event(event)
        except TimeoutError:
            _LOGGER.warning(
                "%s: took over %g s to accept an event (not reading); dropping it (%s)",
                self.peer, limit, self._unsent(),
            )  # fmt: skip
            self.writer.transport.abort()
            raise ConnectionResetError("the client stopped reading") from None

    async def disconnect(self) -> None:
        await self.context.control.unsubscribe(self._control)
        if self._link is not None:
            await self._link.close()
            session_id = self._link.started.session_id
            if self.context.sessions.get(session_id) is self._link:  # not taken over
                del self.context.sessions[session_id]
                self.context.control.session_changed(self._link, connected=False)
                self.context.control.push_server_state()
            _LOGGER.info(
                "Session %s (%s) ended", self._link.started.session_id, self._link.satellite
            )
        if self._stream is not None:
            self._stream.cancel()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _send_error(self, code: str, text: str, request_id: object = None) -> None:
        event = Error(text=text, code=code).event()
        if request_id is not None:
            event.data["request_id"] = request_id
        with contextlib.suppress(ConnectionError, OSError):
            await self.write_event(event)

    # -- dispatch ----------------------------------------------------------------

    async def handle_event(self, event: Event) -> bool:
        if self._link is not None and event.type in UPLINK_TYPES:
            try:
                self._link.handle(event)
            except SessionEnded:
                return False
        elif RunPipeline.is_type(event.type):
            await self._start_session(event)
        elif event.type in CONTROL_TYPES:
            if event.type == HOME_ANSWER:  # read at once: a session is waiting for it
                await self.context.control.handle(self._control, event)
            else:
                self._enqueue(lambda: self._control_request(event))
        elif event.type == STATUS_TYPE:
            sessions = [link.status() for link in self.context.sessions.values()]
            since = event.data.get("since_step", 0)
            backends = self.context.backends.status(since if isinstance(since, int) else 0)
            await self.write_event(
                Event(type=STATUS_TYPE, data={"sessions": sessions, "backends": backends})
            )
        elif Describe.is_type(event.type):
            await self.write_event(self.context.info.event())
        elif Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif SelectProgram.is_type(event.type):
            self._select_program(SelectProgram.from_event(event).name)
        elif Transcribe.is_type(event.type):
            language = Transcribe.from_event(event).language
            if language is not None and not isinstance(language, str):
                raise RequestError("bad-event", "transcribe's language must be a string")
            self._language = language
        elif AudioStart.is_type(event.type):
            self._start_utterance(AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            self._add_audio(event)
        elif AudioStop.is_type(event.type):
            self._finish_utterance()
        elif SynthesizeStart.is_type(event.type):
            self._start_stream(SynthesizeStart.from_event(event).voice)
        elif SynthesizeChunk.is_type(event.type):
            self._stream_text(SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(event.type):
            self._finish_stream()
        elif Synthesize.is_type(event.type):
            if self._stream is None:  # during a stream it is the backwards-compatible copy
                self._synthesize(Synthesize.from_event(event))
        elif Transcript.is_type(event.type):
            self._handle_transcript(Transcript.from_event(event))
        else:
            raise RequestError("unknown-event", f"unknown event type {event.type!r}")
        return True

    def _select_program(self, name: str) -> None:
        info = self.context.info
        programs = [p.name for p in (*info.asr, *info.tts, *info.handle)]
        if name not in programs:
            raise RequestError("not-found", f"no program named {name!r}; programs: {programs}")

    # -- voice sessions -------------------------------------------------------------

    async def _start_session(self, event: Event) -> None:
        request = SessionRequest.from_run_pipeline(event)
        if request is None:
            raise RequestError(
                "bad-request", f"run-pipeline needs a {REQUEST_KEY!r} session request"
            )
        if self._link is not None:
            raise RequestError("out-of-order", "a session is already running on this connection")
        sessions = self.context.config.sessions
        taken_over = self.context.sessions.pop(request.resume, None) if request.resume else None
        if taken_over is not None:
            # The satellite came back before its old connection was noticed as gone.
            _LOGGER.info("Session %s: resumed on a new connection", request.resume)
            await taken_over.close()
        if len(self.context.sessions) >= sessions.max_sessions:
            raise RequestError(
                "busy", f"the server is at its limit of {sessions.max_sessions} sessions"
            )
        # A resumed session keeps its id, and with it the conversation's history.
        session_id = request.resume or uuid.uuid4().hex
        control = self.context.control
        try:
            opened = await open_session(
                self.context.backends, self.context.config, session_id, request.name,
                request.area, control.home_control(session_id, request.name, request.area),
            )  # fmt: skip
        except BackendFullError as error:
            raise RequestError("busy", str(error)) from None
        started = opened.started
        watch = None
        if "played" in request.capabilities:
            watch = PlayedWatch(self.context.config.limits.stalled_client_s, self._not_played)
        self._link = SessionLink(
            opened.session, started, self.write_event, request.name, request.area,
            on_change=control.session_changed, played_watch=watch,
        )  # fmt: skip
        self._link.muted = request.name in self.context.config.muted
        self.context.sessions[session_id] = self._link
        await self._link.start()
        control.push_server_state()
        _LOGGER.info(
            "Session %s: %s (%s) on %s as %s",
            session_id, request.name, request.area, started.backend, started.persona,
        )  # fmt: skip

    def _not_played(self, reply_id: str) -> None:
        _LOGGER.warning(
            "%s: reply %s was never reported played (not reading); dropping it (%s)",
            self.peer, reply_id, self._unsent(),
        )  # fmt: skip
        self.writer.transport.abort()

    def _unsent(self) -> str:
        """What the server holds for this client when it drops it: a bounded amount."""
        buffered = self.writer.transport.get_write_buffer_size()
        queued = self._link.session.queued_audio_bytes if self._link is not None else 0
        return f"unsent: {buffered} bytes in the write buffer, {queued} of reply audio queued"

    async def _control_request(self, event: Event) -> None:
        try:
            answer = await self.context.control.handle(self._control, event)
        except LocaraError as error:
            await self._send_error(error.code, error.text, event.data.get("id"))
            return
        if answer is not None:
            await self.write_event(answer)

    # -- requests run one at a time, off the reading loop --------------------------

    def _enqueue(self, request: Callable[[], Awaitable[None]]) -> None:
        try:
            self._requests.put_nowait(request)
        except asyncio.QueueFull:
            raise RequestError(
                "busy", f"more than {MAX_QUEUED_REQUESTS} requests waiting on this connection"
            ) from None

    async def _serve_requests(self) -> None:
        while True:
            request = await self._requests.get()
            self._serving = True
            try:
                await request()
            except RequestError as error:
                await self._send_error(error.code, error.text)
            except ModelBusyError as error:
                await self._send_error("busy", str(error))
            except (VoiceNotFoundError, AudioTooLongError) as error:
                await self._send_error("bad-request", str(error))
            except RemoteServiceError as error:
                await self._send_error("remote-failed", str(error))
            except (ConnectionError, OSError) as error:
                # This connection is lost: close it whole, so that no request waits in
                # a queue that nobody serves.
                _LOGGER.debug("%s: lost while serving a request: %s", self.peer, error)
                self.writer.transport.abort()
                return
            except Exception as error:  # a model failure ends the request, not the server
                _LOGGER.exception("%s: request failed", self.peer)
                await self._send_error("internal", f"request failed: {error}")
            finally:
                self._serving = False
                self._last_activity = time.monotonic()

    # -- asr ----------------------------------------------------------------------

    def _start_utterance(self, start: AudioStart) -> None:
        try:
            self._utterance = Utterance(
                PcmFormat(start.rate, start.width, start.channels),
                self.context.config.limits.max_audio_seconds,
            )
        except AudioFormatError as error:
            self._utterance = None
            raise RequestError("bad-audio-format", str(error)) from None

    def _add_audio(self, event: Event) -> None:
        if self._utterance is None:
            raise RequestError("out-of-order", "audio-chunk before audio-start")
        chunk = AudioChunk.from_event(event)
        source = self._utterance.source
        if (chunk.rate, chunk.width, chunk.channels) != (
            source.rate,
            source.width,
            source.channels,
        ):
            raise RequestError(
                "bad-audio-format", "audio-chunk format differs from its audio-start"
            )
        try:
            self._utterance.add(chunk.audio)
        except AudioTooLongError as error:
            self._utterance = None
            raise RequestError("too-large", str(error)) from None

    def _finish_utterance(self) -> None:
        utterance, self._utterance = self._utterance, None
        if utterance is None:
            raise RequestError("out-of-order", "audio-stop before audio-start")
        language = self._language or self.context.config.stt.language
        self._enqueue(lambda: self._transcribe(utterance, language))

    async def _transcribe(self, utterance: Utterance, language: str) -> None:
        text = await send_transcript(self.context.stages.stt, utterance, language, self.write_event)
        _LOGGER.debug("%s: transcript %r", self.peer, text)

    # -- tts ----------------------------------------------------------------------

    def _voice(self, voice: SynthesizeVoice | None) -> tuple[str, str | None]:
        tts = self.context.stages.tts
        try:
            if voice is None:
                return tts.default_voice, None
            if not all(
                isinstance(v, str | None) for v in (voice.name, voice.language, voice.speaker)
            ):
                raise RequestError("bad-event", "a voice's name, language and speaker are strings")
            return tts.resolve_voice(voice.name, voice.language), voice.speaker
        except VoiceNotFoundError as error:
            raise RequestError("not-found", str(error)) from None

    def _check_text(self, text: object) -> None:
        if not isinstance(text, str):
            raise RequestError("bad-event", f"text must be a string, not {type(text).__name__}")
        limit = self.context.config.limits.max_text_chars
        if len(text) > limit:
            raise RequestError("too-large", f"text of {len(text)} characters is over {limit}")

    def _synthesize(self, request: Synthesize) -> None:
        self._check_text(request.text)
        voice, speaker = self._voice(request.voice)
        tts = self.context.stages.tts
        self._enqueue(lambda: speak(tts, request.text, voice, speaker, self.write_event))

    def _start_stream(self, voice_request: SynthesizeVoice | None) -> None:
        if self._stream is not None:
            raise RequestError("out-of-order", "synthesize-start while a stream is open")
        voice, speaker = self._voice(voice_request)
        self._stream = StreamingSynthesis(
            self.context.stages.tts,
            voice,
            speaker,
            self.write_event,
            self.context.config.limits.max_text_chars,
        )

    def _stream_text(self, text: str) -> None:
        if self._stream is None:
            raise RequestError("out-of-order", "synthesize-chunk before synthesize-start")
        self._check_text(text)
        self._stream.add_text(text)

    def _finish_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            raise RequestError("out-of-order", "synthesize-stop before synthesize-start")

        async def finish() -> None:
            await stream.finish()
            await self.write_event(SynthesizeStopped().event())

        self._enqueue(finish)

    # -- handle -------------------------------------------------------------------

    def _handle_transcript(self, transcript: Transcript) -> None:
        self._check_text(transcript.text)
        context = dict(transcript.context or {})
        conversation_id = context.get("conversation_id")
        if not isinstance(conversation_id, str) or not conversation_id:
            conversation_id = uuid.uuid4().hex
        context["conversation_id"] = conversation_id
        self._enqueue(lambda: self._reply(transcript.text, conversation_id, context))

    async def _reply(self, text: str, conversation_id: str, context: dict[str, object]) -> None:
        persona = self.context.config.persona()
        await self.write_event(HandledStart(context=context).event())
        pieces: list[str] = []
        answer = self.context.agent.respond(persona, conversation_id, text)
        async with contextlib.aclosing(answer.pieces) as written:
            async for piece in written:
                pieces.append(piece)
                await self.write_event(HandledChunk(text=piece).event())
        await self.write_event(Handled(text="".join(pieces).strip(), context=context).event())
        await self.write_event(HandledStop().event())
