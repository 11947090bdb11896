"""A satellite connection in session mode: mic audio in, the backend's events out.

The uplink is handled inline as events are read (conversion and VAD only, at a
bounded pace: microphone.py); the downlink is its own task, so a satellite that reads
slowly never delays the reading of its microphone or any other session.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop
from wyoming.snd import Played
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detection

from ..audio_format import PcmFormat
from ..backends import events as session_events
from ..backends.base import VoiceSession
from ..errors import BadAudioFormat, NoAnswer
from ..protocol import WriteEvent
from ..protocol.parsing import parse_event
from ..protocol.session import LISTEN_TYPE, Flush, PlayedReport, SatelliteState, SessionStarted
from .microphone import SessionMicrophone
from .owner import SessionOwner
from .played_watch import PlayedWatch

_LOGGER = logging.getLogger(__name__)


UPLINK_TYPES = {
    "audio-start", "audio-chunk", "audio-stop", "played",
    "locara-state", "detection", "voice-started", "voice-stopped",
}  # fmt: skip


ANNOUNCE_PLAYED_MARGIN_S = 3.0
"""How long after an announcement could have played out (its first audio sent plus its
length, or its last audio sent, whichever is later) its `played` report may come."""


class Playback(enum.Enum):
    """How an announcement went, as its satellite's `played` report says."""

    PLAYED = "played"
    INTERRUPTED = "interrupted"
    """Reported with fewer samples than were sent: a flush cut it short."""
    UNCONFIRMED = "unconfirmed"
    """No report within `ANNOUNCE_PLAYED_MARGIN_S`: sent, and should have played."""


class SessionEnded(Exception):
    """The satellite ended its session (`audio-stop`)."""


class SatelliteGoneError(Exception):
    """The satellite's connection closed while another connection (control) acted on its
    session: an error of that satellite's, not of the connection acting."""


@contextlib.asynccontextmanager
async def _from_another_connection(satellite: str) -> AsyncIterator[None]:
    try:
        yield
    except (ConnectionError, OSError) as error:
        raise SatelliteGoneError(f"{satellite} has gone: {error}") from error


class SessionLink:
    def __init__(
        self,
        session: VoiceSession,
        started: SessionStarted,
        write: WriteEvent,
        disconnect: Callable[[], None],
        owner: SessionOwner,
        area: str | None = None,
        on_change: Callable[[SessionLink], None] | None = None,
        played_watch: PlayedWatch | None = None,
    ) -> None:
        self.session = session
        self.started = started
        self.owner = owner
        self.disconnect = disconnect
        """Drop the satellite's connection (its session was taken over or revoked)."""
        self.satellite = owner.satellite
        self.area = area
        self.state = "listening"
        """What the satellite is doing: as it last said, or as its session's events show."""
        self.user_speaking = False
        """The satellite's own VAD: the user is speaking now."""
        self.last_wake_word: str | None = None
        self.last_transcript: str | None = None
        self.last_reply: str | None = None
        self._latency_ms: float | None = None
        """The last reply's time from the end of the user's speech to its first audio,
        until taken."""
        self.muted = False
        """The microphone is ignored: silence goes to the backend instead."""
        self.opened_at = time.monotonic()
        self._on_change = on_change
        self._played_watch = played_watch
        """Set for a satellite that promised `played` reports: one that stops sending them
        (it stopped reading) is dropped."""
        self._closed = False
        self._write = write
        self._microphone = SessionMicrophone(owner.satellite, started.input.rate)
        self._open_audio: str | None = None  # reply whose audio stream is open
        self._downlink: asyncio.Task[None] | None = None
        self._downlink_lock = asyncio.Lock()
        """Held while one reply's events go out, so an announcement never interleaves."""
        self._sounds: dict[str, Callable[[], Awaitable[None]]] = {}
        """What the room sounds that "stop" ends (announcements, ringing timers): how."""
        self._cut_short: set[str] = set()
        """Announcements "stop" ended while they were being sent."""
        self._announcements: dict[str, asyncio.Future[int]] = {}
        """Announcements waiting for their `played` report: the samples it gives."""

    async def start(self) -> None:
        await self._write(self.started.event())
        self._start_downlink()
        self._changed()

    def _start_downlink(self) -> None:
        self._downlink = asyncio.create_task(self._send_events(), name=f"downlink {self.satellite}")

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._changed()

    # -- uplink ---------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """An uplink event; raises SessionEnded on `audio-stop`, a LocaraError on bad input
        (TooFast when audio comes faster than a microphone's pace: it is dropped)."""
        if AudioStart.is_type(event.type):
            start = parse_event(AudioStart, event, BadAudioFormat)
            self._microphone.start(PcmFormat(start.rate, start.width, start.channels))
        elif AudioChunk.is_type(event.type):
            chunk = parse_event(AudioChunk, event, BadAudioFormat)
            samples = self._microphone.convert(chunk.audio)
            if samples is not None:  # else dropped: sent too fast
                self.session.push_audio(samples * 0 if self.muted else samples)
        elif AudioStop.is_type(event.type):
            raise SessionEnded
        elif Played.is_type(event.type):
            report = PlayedReport.from_event(event)
            self.session.report_played(report.reply_id, report.samples)
            self.remove_sound(report.reply_id)  # an announcement, played out
            if self._played_watch is not None:
                self._played_watch.reported(report.reply_id)
            announcement = self._announcements.get(report.reply_id)
            if announcement is not None and not announcement.done():
                announcement.set_result(report.samples)
        elif SatelliteState.is_type(event.type):
            self._set_state(SatelliteState.from_event(event).state)
            _LOGGER.info("%s: %s", self.satellite, self.state)
        elif Detection.is_type(event.type):
            self.last_wake_word = parse_event(Detection, event).name
            _LOGGER.info("%s: woken by %s", self.satellite, self.last_wake_word)
        elif VoiceStarted.is_type(event.type) or VoiceStopped.is_type(event.type):
            self.user_speaking = VoiceStarted.is_type(event.type)

    def status(self) -> dict[str, Any]:
        """This session as `locara-status` lists it."""
        return {
            "session_id": self.started.session_id,
            "name": self.satellite,
            "area": self.area,
            "backend": self.started.backend,
            "persona": self.started.persona,
            "state": self.state,
            "muted": self.muted,
            "user_speaking": self.user_speaking,
            "wake_word": self.last_wake_word,
            "connected_s": round(time.monotonic() - self.opened_at, 1),
        }

    # -- downlink -------------------------------------------------------------------

    async def _send_events(self) -> None:
        try:
            async for event in self.session.events():
                async with self._downlink_lock:
                    await self._send(event)
        except (ConnectionError, OSError) as error:
            _LOGGER.debug("%s: downlink closed: %s", self.satellite, error)

    async def _send(self, event: session_events.SessionEvent) -> None:
        self._follow(event)
        for wyoming_event in self._translate(event):
            await self._write(wyoming_event)

    def _follow(self, event: session_events.SessionEvent) -> None:
        """What the session's events say of the room: its state, words and latency, and
        which replies it must report played."""
        watch = self._played_watch
        if watch is not None:
            if isinstance(event, session_events.ReplyAudio):
                audio = event.format
                watch.audio_sent(event.reply_id, len(event.audio) / audio.frame_bytes / audio.rate)
            elif isinstance(event, session_events.ReplyFinished | session_events.ReplyInterrupted):
                watch.reply_sent(event.reply_id)
        # What was said is logged at debug only: logs end up in journals and bug reports.
        if isinstance(event, session_events.UserTranscript):
            _LOGGER.debug("%s: heard %r", self.satellite, event.text)
            self.last_transcript = event.text
            self.state = "thinking"
            self._changed()
        elif isinstance(event, session_events.ReplyAudio):
            self._set_state("speaking")
        elif isinstance(event, session_events.ReplyFinished):
            _LOGGER.debug("%s: reply %s: %r", self.satellite, event.reply_id, event.text)
            self.last_reply = event.text
            self._latency_ms = event.timings.get("speech_end_to_audio_ms")
            self.state = "listening"
            self._changed()
        elif isinstance(event, session_events.ReplyInterrupted):
            self._set_state("listening")

    def take_latency(self) -> float | None:
        """The voice-to-voice latency of a reply finished since the last call, if any."""
        latency, self._latency_ms = self._latency_ms, None
        return latency

    async def announce(
        self, text: str, audio: AsyncIterator[bytes], audio_format: PcmFormat
    ) -> Playback:
        """Say `text`, whose speech `audio` yields, as a reply of its own, cutting the reply
        that is playing, and wait until the satellite reports it played (see `Playback`).
        SatelliteGoneError when the satellite's connection is lost first."""
        if self._closed:
            raise SatelliteGoneError(f"{self.satellite} has gone")
        await self.session.interrupt()
        reply_id = f"announce-{uuid.uuid4().hex[:8]}"
        report = asyncio.get_running_loop().create_future()
        self._announcements[reply_id] = report
        _LOGGER.info("%s: announcing", self.satellite)
        self.add_sound(reply_id, partial(self._cut, reply_id))  # "stop" cuts it from now on
        try:
            sent, first_at = 0, None
            async with _from_another_connection(self.satellite), self._downlink_lock:
                await self._send(session_events.ReplyStarted(reply_id))
                await self._send(session_events.ReplyText(reply_id, text))
                async for block in audio:
                    if reply_id in self._cut_short:
                        break
                    first_at = first_at or time.monotonic()
                    sent += len(block)
                    await self._send(session_events.ReplyAudio(reply_id, block, audio_format))
                if reply_id in self._cut_short:  # "stop" while it was being made
                    self._cut_short.discard(reply_id)
                    await self._send(session_events.ReplyInterrupted(reply_id))
                    return Playback.INTERRUPTED
                await self._send(session_events.ReplyFinished(reply_id, text, {}))
            if not sent:  # no audio-start, so no report: nothing to play
                return Playback.PLAYED
            now = time.monotonic()
            playable_until = max((first_at or now) + sent / audio_format.bytes_per_second, now)
            timeout_s = playable_until - now + ANNOUNCE_PLAYED_MARGIN_S
            return await self._played(report, sent // audio_format.frame_bytes, timeout_s)
        finally:
            self.remove_sound(reply_id)
            del self._announcements[reply_id]
            if not report.cancel() and not report.cancelled():
                report.exception()  # taken: a session that closed while sending is told above

    async def _played(
        self, report: asyncio.Future[int], samples: int, timeout_s: float
    ) -> Playback:
        try:
            # The timeout outside: its TimeoutError is an OSError, not the satellite gone.
            async with asyncio.timeout(timeout_s), _from_another_connection(self.satellite):
                played = await report
        except TimeoutError:
            _LOGGER.warning(
                "%s: no played report for an announcement within %.0f s of its end",
                self.satellite, ANNOUNCE_PLAYED_MARGIN_S,
            )  # fmt: skip
            return Playback.UNCONFIRMED
        return Playback.PLAYED if played >= samples else Playback.INTERRUPTED

    async def hear_answer(self, words: asyncio.Future[str], timeout_s: float) -> str:
        """The user's next words, which `words` (the session's `next_words`) brings: NoAnswer
        after `timeout_s` without them, SatelliteGoneError when the satellite leaves first."""
        try:
            # The timeout outside: its TimeoutError is an OSError, not the satellite gone.
            async with asyncio.timeout(timeout_s), _from_another_connection(self.satellite):
                text = await words
        except TimeoutError:
            raise NoAnswer(f"{self.satellite} said nothing within {timeout_s:.0f} s") from None
        finally:
            words.cancel()
        _LOGGER.info("%s: answered a question", self.satellite)
        self._set_state("listening")  # its words get no reply
        return text

    async def listen(self) -> None:
        """Ask the satellite to open its conversation, as its wake word would."""
        async with _from_another_connection(self.satellite):
            await self._write(Event(type=LISTEN_TYPE))

    # -- what the room sounds besides replies, and "stop" -----------------------------

    async def tell(self, event: Event) -> None:
        """Send the satellite `event` between replies' events (a timer's). SatelliteGoneError
        when the satellite's connection is lost."""
        async with _from_another_connection(self.satellite), self._downlink_lock:
            await self._write(event)

    def add_sound(self, name: str, stop: Callable[[], Awaitable[None]]) -> None:
        """The room sounds `name` (an announcement, a ringing timer) until `remove_sound`;
        `stop` ends it when the user says "stop"."""
        self._sounds[name] = stop

    def remove_sound(self, name: str) -> None:
        self._sounds.pop(name, None)

    def sounding(self) -> bool:
        """Whether an announcement plays or a timer rings now: what "stop" would end."""
        return bool(self._sounds)

    async def hush(self) -> bool:
        """End everything the room sounds (the user said "stop"); whether anything did."""
        sounds, self._sounds = self._sounds, {}
        for stop in sounds.values():
            await stop()
        return bool(sounds)

    async def _cut(self, reply_id: str) -> None:
        """Stop an announcement, as a barge-in stops a reply: while it is being made, its
        making stops (`announce` sees `_cut_short`); once sent, the satellite drops it."""
        self._cut_short.add(reply_id)
        with contextlib.suppress(SatelliteGoneError):
            async with _from_another_connection(self.satellite), self._downlink_lock:
                if reply_id in self._cut_short:
                    self._cut_short.discard(reply_id)
                    await self._send(session_events.ReplyInterrupted(reply_id))

    async def move(self, session: VoiceSession, started: SessionStarted) -> None:
        """Go on with another backend or persona: the old session ends, its reply is cut.

        SatelliteGoneError, with `session` closed, when the satellite has gone meanwhile."""
        try:
            old = await self._hand_over(session, started)
        except SatelliteGoneError:
            await session.close()
            raise
        await old.close()
        self.state = "listening"
        self._changed()

    async def _hand_over(self, session: VoiceSession, started: SessionStarted) -> VoiceSession:
        """Cut the old session's reply, announce the new one and send its events; the old
        session, to close."""
        async with _from_another_connection(self.satellite), self._downlink_lock:
            if self._downlink is not None:
                self._downlink.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._downlink
            if self._open_audio is not None:
                for wyoming_event in self._translate(
                    session_events.ReplyInterrupted(self._open_audio)
                ):
                    await self._write(wyoming_event)
            await self._write(started.event())  # before any event of the new session
            if self._closed:  # while writing: close() has ended the old session
                raise SatelliteGoneError(f"{self.satellite} has gone")
            old, self.session, self.started = self.session, session, started
            self._microphone.retarget(started.input.rate)
            self._start_downlink()
        return old

    def _close_audio(self) -> list[Event]:
        if self._open_audio is None:
            return []
        self._open_audio = None
        return [AudioStop().event()]

    def _translate(self, event: session_events.SessionEvent) -> list[Event]:
        if isinstance(event, session_events.ReplyAudio):
            opened = []
            if self._open_audio != event.reply_id:
                opened = [*self._close_audio(), self._audio_start(event)]
                self._open_audio = event.reply_id
            audio = event.format
            chunk = AudioChunk(audio.rate, audio.width, audio.channels, event.audio)
            return [*opened, chunk.event()]
        if isinstance(event, session_events.VoiceStarted):
            return [VoiceStarted(timestamp=event.timestamp_ms).event()]
        if isinstance(event, session_events.VoiceStopped):
            return [VoiceStopped(timestamp=event.timestamp_ms).event()]
        if isinstance(event, session_events.UserTranscript):
            return [
                TranscriptStart().event(),
                TranscriptChunk(text=event.text).event(),
                Transcript(text=event.text).event(),
                TranscriptStop().event(),
            ]
        if isinstance(event, session_events.ReplyStarted):
            return [HandledStart(context={"reply_id": event.reply_id}).event()]
        if isinstance(event, session_events.ReplyText):
            return [HandledChunk(text=event.text).event()]
        if isinstance(event, session_events.ReplyFinished):
            return [
                *self._close_audio(),
                Handled(
                    text=event.text, context={"reply_id": event.reply_id, "timings": event.timings}
                ).event(),
                HandledStop().event(),
            ]
        if isinstance(event, session_events.ReplyInterrupted):
            return [
                Flush(event.reply_id).event(),
                *self._close_audio(),
                Handled(context={"reply_id": event.reply_id, "interrupted": True}).event(),
                HandledStop().event(),
            ]
        return [Error(text=event.text, code=event.code).event()]

    @staticmethod
    def _audio_start(event: session_events.ReplyAudio) -> Event:
        audio = event.format
        start = AudioStart(audio.rate, audio.width, audio.channels).event()
        start.data["reply_id"] = event.reply_id
        return start

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._played_watch is not None:
            self._played_watch.close()
        for announcement in self._announcements.values():
            if not announcement.done():
                announcement.set_exception(ConnectionError("the session closed"))
        await self.session.close()
        if self._downlink is not None:
            self._downlink.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._downlink
