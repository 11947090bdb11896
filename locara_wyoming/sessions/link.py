"""A satellite connection in session mode: mic audio in, the backend's events out.

The uplink is handled inline as events are read (conversion and VAD only); the
downlink is its own task, so a satellite that reads slowly never delays the
reading of its microphone or any other session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop
from wyoming.snd import Played
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detection

from ..audio_format import MonoConverter, PcmFormat
from ..backends import events as session_events
from ..backends.base import VoiceSession
from .protocol import Flush, PlayedReport, SatelliteState, SessionStarted

_LOGGER = logging.getLogger(__name__)

Write = Callable[[Event], Awaitable[None]]

UPLINK_TYPES = {
    "audio-start", "audio-chunk", "audio-stop", "played",
    "locara-state", "detection", "voice-started", "voice-stopped",
}  # fmt: skip


class SessionEnded(Exception):
    """The satellite ended its session (`audio-stop`)."""


class SessionLink:
    def __init__(
        self,
        session: VoiceSession,
        started: SessionStarted,
        write: Write,
        satellite: str,
        area: str | None = None,
    ) -> None:
        self.session = session
        self.started = started
        self.satellite = satellite
        self.area = area
        self.state = "listening"
        """What the satellite last said it was doing (a plain satellite always listens)."""
        self.user_speaking = False
        """The satellite's own VAD: the user is speaking now."""
        self.last_wake_word: str | None = None
        self.opened_at = time.monotonic()
        self._closed = False
        self._write = write
        self._converter: MonoConverter | None = None
        self._open_audio: str | None = None  # reply whose audio stream is open
        self._downlink: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._write(self.started.event())
        self._downlink = asyncio.create_task(self._send_events(), name=f"downlink {self.satellite}")

    # -- uplink ---------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """An uplink event; raises SessionEnded on `audio-stop`, ValueError on bad input."""
        if AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            self._converter = MonoConverter(
                PcmFormat(start.rate, start.width, start.channels), self.started.input.rate
            )
        elif AudioChunk.is_type(event.type):
            if self._converter is None:
                raise ValueError("audio-chunk before audio-start")
            self.session.push_audio(self._converter.convert(AudioChunk.from_event(event).audio))
        elif AudioStop.is_type(event.type):
            raise SessionEnded
        elif Played.is_type(event.type):
            report = PlayedReport.from_event(event)
            self.session.report_played(report.reply_id, report.samples)
        elif SatelliteState.is_type(event.type):
            self.state = SatelliteState.from_event(event).state
            _LOGGER.info("%s: %s", self.satellite, self.state)
        elif Detection.is_type(event.type):
            self.last_wake_word = Detection.from_event(event).name
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
            "user_speaking": self.user_speaking,
            "wake_word": self.last_wake_word,
            "connected_s": round(time.monotonic() - self.opened_at, 1),
        }

    # -- downlink -------------------------------------------------------------------

    async def _send_events(self) -> None:
        try:
            async for event in self.session.events():
                for wyoming_event in self._translate(event):
                    await self._write(wyoming_event)
        except (ConnectionError, OSError) as error:
            _LOGGER.debug("%s: downlink closed: %s", self.satellite, error)

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
        await self.session.close()
        if self._downlink is not None:
            self._downlink.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._downlink
