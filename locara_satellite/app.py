"""The satellite: microphone → echo gate → conversation → session → speaker, reconnecting.

One session client at a time carries the room to the server; when the connection
fails the satellite waits (1 s, doubling to 30 s), finds the server again and
resumes the same session, so that the conversation's history carries on. A paired
satellite (credential.py) opens a session only once the server has proved itself to be
the one it was paired with; until then nothing is sent, and the microphone, read only
by an open session, is not read (nor, if no session has opened yet, opened).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import soxr
from wyoming.event import Event
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detection

from locara_wyoming.client.echo_gate import EchoGate, EchoGatedSource
from locara_wyoming.client.session import (
    AudioSource,
    NotProvenError,
    SessionClient,
    SessionFailedError,
)
from locara_wyoming.protocol.auth import PairingCode
from locara_wyoming.protocol.session import (
    LISTEN_TYPE,
    Flush,
    SatelliteState,
    SessionRequest,
)

from .audio import MIC_FORMAT, Speaker
from .audio.wav_files import read_wav
from .config import Activation, SatelliteConfig
from .discovery import ServerFinder
from .listening.conversation import Conversation, ConversationChange
from .listening.speech import SpeechDetector
from .listening.wake_word import WakeWordDetector
from .status import State, StatusLine
from .timers import TIMER_TYPES, RoomTimers

_LOGGER = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
LAST_RETRY_S = 30.0
STATE_CHECK_S = 0.1


class ContinuingSource:
    """One microphone stream across reconnections: each session carries on where it was."""

    format = MIC_FORMAT

    def __init__(self, source: AudioSource) -> None:
        self._chunks = source.chunks()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return
            yield chunk


class Satellite:
    def __init__(
        self,
        config: SatelliteConfig,
        microphone: AudioSource,
        speaker: Speaker,
        finder: ServerFinder,
        credential: PairingCode | None = None,
    ) -> None:
        self.config = config
        self.speaker = speaker
        self.finder = finder
        self.credential = credential
        self.status = StatusLine(self._tell_state)
        self.session_id: str | None = None
        self.client: SessionClient | None = None
        self._thinking = False
        self._sound_ids = itertools.count()
        activation = config.activation
        self.echo_gate = EchoGate(MIC_FORMAT.rate) if config.audio.echo_gate else None
        self._to_gate_rate = soxr.ResampleStream(speaker.rate, MIC_FORMAT.rate, 1, dtype="float32")
        gated: AudioSource = (
            EchoGatedSource(microphone, self.echo_gate) if self.echo_gate else microphone
        )
        self.conversation = Conversation(
            gated,
            activation.mode,
            SpeechDetector(activation.vad_threshold),
            WakeWordDetector(activation.wake_word) if activation.mode is Activation.WAKE else None,
            activation.idle_s,
            activation.send_silence,
            on_change=self._on_conversation,
            replying=lambda: self.client is not None and self.client.busy(),
        )
        self._source = ContinuingSource(self.conversation)
        speaker.on_output = self._heard_from_speaker
        self.timers = RoomTimers(
            lambda sound_id: self._play_sound(config.timers.sound, sound_id),
            speaker.flush,
            self.conversation.open,
        )

    def _heard_from_speaker(self, block: np.ndarray) -> None:
        """The speaker's output, for the echo gate (called on the event loop)."""
        if self.echo_gate is not None:
            self.echo_gate.played(self._to_gate_rate.resample_chunk(block))

    async def run(self) -> None:
        """Until the microphone ends (a file) or the task is cancelled."""
        await self.speaker.start()
        refresher = asyncio.create_task(self._refresh_state())
        try:
            await self._connect_until_done()
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            await self.speaker.close()

    async def _connect_until_done(self) -> None:
        if self.credential is None:
            _LOGGER.info(
                "Not enrolled: connecting without proof, which only a server in open mode "
                "(security.open_satellites) admits, without home control. To enrol: "
                "`locara-wyoming satellites add NAME` on the server, then "
                "`locara-satellite --pair CODE` here"
            )
        else:
            _LOGGER.info("Paired as %s with server %s: connecting to it alone",
                         self.credential.name, self.credential.server_id)  # fmt: skip
        retry_s = FIRST_RETRY_S
        while True:
            self.status.set(State.CONNECTING)
            uri = self.config.server or await self.finder.find()
            request = SessionRequest(
                name=self.config.name,
                area=self.config.area,
                capabilities=["played", "flush", "state", "wake-word", "vad"],
                resume=self.session_id,
            )
            self.client = SessionClient(
                uri, request, self._source, self.speaker, self._on_event,
                credential=self.credential,
            )  # fmt: skip
            try:
                await self.client.run()
                return
            except NotProvenError as error:
                _LOGGER.error("Server %s: %s; trying again in %g s", uri, self._not_proven(error),
                              retry_s)  # fmt: skip
            except (OSError, SessionFailedError) as error:
                if self.client.started is not None:
                    self.session_id = self.client.started.session_id
                    retry_s = FIRST_RETRY_S
                elif isinstance(error, SessionFailedError):
                    self.session_id = None  # refused: start afresh next time
                _LOGGER.warning("Server %s: %s; trying again in %g s", uri, error, retry_s)
            finally:
                self.client = None
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, LAST_RETRY_S)

    def _not_proven(self, error: NotProvenError) -> str:
        if error.refused:
            return (
                "this satellite is no longer enrolled on the server: pair it again "
                f"(`locara-wyoming satellites add {self.config.name}` there, then "
                "`locara-satellite --pair CODE` here, and restart it)"
            )
        return (
            f"it did not prove itself to be the server this satellite is paired with ({error}), "
            "so nothing was sent to it; a reinstalled server, or a satellite enrolled again, "
            "needs a new pairing (`locara-satellite --pair CODE`)"
        )

    # -- what happens ----------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.type == "locara-session":
            _LOGGER.info("Connected: session %s", event.data.get("session_id"))
            self._send_soon(SatelliteState(self._current_state()).event())
        if event.type == LISTEN_TYPE:  # after an announcement that expects an answer
            self.conversation.open("the server asked")
        if event.type in TIMER_TYPES:
            self.timers.handle(event)
        if event.type != "pong":
            self.conversation.activity()
        if Flush.is_type(event.type):
            _LOGGER.info("Barge-in: reply %s stopped", Flush.from_event(event).reply_id)
        if VoiceStopped.is_type(event.type):
            self._thinking = True
        elif event.type in ("audio-start", "handled-stop") or Flush.is_type(event.type):
            self._thinking = False
        self.status.set(self._current_state())

    def _on_conversation(self, change: ConversationChange, detail: str) -> None:
        if change is ConversationChange.OPENED:
            _LOGGER.info("Conversation opened: %s", detail)
            if self.conversation.wake_word is not None and detail.startswith("wake word"):
                self._send_soon(Detection(name=self.conversation.wake_word.name).event())
            self._play_sound(self.config.activation.wake_sound)
        elif change is ConversationChange.CLOSED:
            _LOGGER.info("Conversation closed: %s", detail)
            self._play_sound(self.config.activation.done_sound)
        elif change is ConversationChange.SPEECH_STARTED:
            self._send_soon(VoiceStarted().event())
        else:
            self._send_soon(VoiceStopped().event())
        self.status.set(self._current_state())

    def _current_state(self) -> State:
        if self.client is None or not self.client.ready.is_set():
            return State.CONNECTING
        if not self.conversation.is_open:
            return State.IDLE
        if self._thinking:
            return State.THINKING
        return State.SPEAKING if self.client.busy() else State.LISTENING

    async def _refresh_state(self) -> None:
        while True:  # playing out ends without an event
            await asyncio.sleep(STATE_CHECK_S)
            self.status.set(self._current_state())

    def _tell_state(self, state: State) -> None:
        if state is not State.CONNECTING:
            self._send_soon(SatelliteState(state.value).event())

    def _send_soon(self, event: Event) -> None:
        if self.client is not None:
            asyncio.get_running_loop().create_task(self.client.send(event))

    def _play_sound(self, path: Path | None, sound_id: str | None = None) -> None:
        if path is None:
            return
        audio, pcm = read_wav(path)
        sound_id = sound_id or f"sound-{next(self._sound_ids)}"

        async def play() -> None:
            await self.speaker.start_reply(sound_id, audio)
            await self.speaker.write(sound_id, pcm)
            with contextlib.suppress(asyncio.CancelledError):
                await self.speaker.finish_reply(sound_id)

        asyncio.get_running_loop().create_task(play())
