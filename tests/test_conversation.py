"""When a room's microphone reaches the server: wake word, push-to-talk, always; idle close;
silence kept off the network. Real pymicro-vad and microWakeWord on Piper's speech, on a
clock that advances with the audio."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from locara_satellite.audio import CHUNK_BYTES, CHUNK_MS, MIC_FORMAT
from locara_satellite.config import Activation
from locara_satellite.listening.conversation import (
    PREROLL_MS,
    TAIL_MS,
    Conversation,
    ConversationChange,
)
from locara_satellite.listening.speech import SpeechDetector
from locara_satellite.listening.wake_word import WakeWordDetector
from locara_wyoming.audio_format import float_to_pcm16

from .support.speech import Speech

pytestmark = pytest.mark.models

RATE = 16000


class Recording:
    """A microphone playing prepared audio; its clock is the audio's own time."""

    format = MIC_FORMAT

    def __init__(self, *parts: np.ndarray) -> None:
        self.pcm = float_to_pcm16(np.concatenate(parts))
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def chunks(self) -> AsyncIterator[bytes]:
        for offset in range(0, len(self.pcm) - CHUNK_BYTES + 1, CHUNK_BYTES):
            self.now = offset / CHUNK_BYTES * CHUNK_MS / 1000
            yield self.pcm[offset : offset + CHUNK_BYTES]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.float32)


async def run(
    recording: Recording, mode: Activation, send_silence: bool = True, idle_s: float = 2.0
) -> tuple[Conversation, list[tuple[float, bytes]], list[tuple[float, ConversationChange]]]:
    changes: list[tuple[float, ConversationChange]] = []
    conversation = Conversation(
        recording, mode, SpeechDetector(),
        WakeWordDetector("okay_nabu") if mode is Activation.WAKE else None,
        idle_s, send_silence,
        on_change=lambda change, detail: changes.append((recording.now, change)),
        clock=recording.clock,
    )  # fmt: skip
    sent = [(recording.now, chunk) async for chunk in conversation.chunks()]
    return conversation, sent, changes


async def test_the_wake_word_opens_and_silence_closes(speech: Speech) -> None:
    question = speech.at_16k("What is the weather like today?")
    recording = Recording(silence(1.0), speech.at_16k("Okay Nabu."), silence(0.3), question,
                          silence(4.0))  # fmt: skip
    _, sent, changes = await run(recording, Activation.WAKE, idle_s=2.0)
    kinds = [change for _, change in changes]
    assert kinds[0] is ConversationChange.OPENED and kinds[-1] is ConversationChange.CLOSED
    assert ConversationChange.SPEECH_STARTED in kinds and ConversationChange.SPEECH_STOPPED in kinds
    opened, closed = changes[0][0], changes[-1][0]
    assert 1.3 < opened < 2.5  # as the wake word ends
    assert all(opened <= at <= closed for at, _ in sent)
    # The question went out whole, and the wake word did not.
    assert len(sent) * CHUNK_MS / 1000 >= len(question) / RATE
    last_speech = max(at for at, change in changes if change is ConversationChange.SPEECH_STOPPED)
    assert 2.0 <= closed - last_speech <= 3.0  # idle time after the VAD's stop


async def test_speech_without_the_wake_word_sends_nothing(speech: Speech) -> None:
    recording = Recording(silence(0.5), speech.at_16k("Turn on the kitchen lights please."),
                          silence(1.0))  # fmt: skip
    conversation, sent, changes = await run(recording, Activation.WAKE)
    assert sent == [] and changes == [] and not conversation.is_open


async def test_always_open_sends_everything_and_never_closes(speech: Speech) -> None:
    recording = Recording(silence(0.5), speech.at_16k("Hello there."), silence(5.0))
    _, sent, changes = await run(recording, Activation.ALWAYS, idle_s=1.0)
    assert len(sent) == len(recording.pcm) // CHUNK_BYTES
    assert ConversationChange.CLOSED not in [change for _, change in changes]


async def test_without_silence_only_speech_goes_out_with_its_edges(speech: Speech) -> None:
    said = speech.at_16k("Hello there, how are you doing today?")
    recording = Recording(silence(3.0), said, silence(3.0))
    _, sent, changes = await run(recording, Activation.ALWAYS, send_silence=False, idle_s=60)
    started = next(at for at, c in changes if c is ConversationChange.SPEECH_STARTED)
    stopped = next(at for at, c in changes if c is ConversationChange.SPEECH_STOPPED)
    sent_s = len(sent) * CHUNK_MS / 1000
    # what was said, what came just before it (the VAD's onset), and the silence after it
    expected = (stopped - started) + PREROLL_MS / 1000 + TAIL_MS / 1000
    assert abs(sent_s - expected) <= 0.1, (sent_s, expected)
    assert sent_s < 9.0 - 4.0  # the rest of the 9 s stayed home


async def test_push_to_talk_opens_on_request_and_idles_out(speech: Speech) -> None:
    recording = Recording(silence(1.0), speech.at_16k("Hello there."), silence(3.0))
    changes: list[ConversationChange] = []
    conversation = Conversation(
        recording, Activation.PUSH, SpeechDetector(), None, 1.0,
        on_change=lambda change, detail: changes.append(change), clock=recording.clock,
    )  # fmt: skip
    sent = 0
    async for _ in conversation.chunks():
        sent += 1
    assert sent == 0 and changes == []  # nobody pressed the button
    recording.now = 0.0
    conversation.open("push-to-talk")
    async for _ in conversation.chunks():
        sent += 1
    assert changes[0] is ConversationChange.OPENED and changes[-1] is ConversationChange.CLOSED
    assert 0 < sent < len(recording.pcm) // CHUNK_BYTES
