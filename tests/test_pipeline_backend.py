"""The pipeline backend through its interface, in process, with the real models.

What the protocol cannot show: the conversation history. Each turn reaches the
LLM with the turns before it; after a barge-in it keeps only the words the
satellite played; a speculative answer the user talked over leaves no trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from locara_wyoming.backends.base import SessionSettings, VoiceSession
from locara_wyoming.backends.events import (
    ReplyAudio,
    ReplyFinished,
    ReplyInterrupted,
    ReplyStarted,
    SessionEvent,
    UserTranscript,
)
from locara_wyoming.backends.pipeline.backend import PipelineBackend
from locara_wyoming.config import parse_config
from locara_wyoming.conversation.agent import ConversationAgent
from locara_wyoming.conversation.history import ConversationStore
from locara_wyoming.sessions.routing import route
from locara_wyoming.stages.llm import ChatMessage, ChatModel
from locara_wyoming.stages.loading import Stages, load_stages
from locara_wyoming.workers import Urgency

from .support.speech import Speech

pytestmark = pytest.mark.models

SILENCE = np.zeros(16000, np.float32)
PAST_ANY_WAIT = np.zeros(32000, np.float32)
"""Longer than the silence after a turn that sounds unfinished (1600 ms)."""


@pytest.fixture(scope="module")
async def stages() -> Stages:
    return await load_stages(parse_config({"llm": {"temperature": 0.0}}))


@dataclass
class PromptLog(ChatModel):
    """The real LLM, with a record of every prompt it was given."""

    llm: ChatModel
    prompts: list[list[ChatMessage]] = field(default_factory=list)
    prefills: list[list[ChatMessage]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.description = self.llm.description

    async def load(self) -> None:
        await self.llm.load()

    def stream_reply(
        self,
        messages: list[ChatMessage],
        conversation_id: str | None = None,
        urgency: Urgency | None = None,
    ) -> AsyncGenerator[str, None]:
        self.prompts.append(list(messages))
        return self.llm.stream_reply(messages, conversation_id, urgency)

    async def prefill(self, messages: list[ChatMessage], conversation_id: str) -> None:
        self.prefills.append(list(messages))
        await self.llm.prefill(messages, conversation_id)


@pytest.fixture
async def backend(stages: Stages, request: pytest.FixtureRequest) -> PipelineBackend:
    sessions = getattr(request, "param", {})
    config = parse_config({"llm": {"temperature": 0.0}, "sessions": sessions})
    agent = ConversationAgent(PromptLog(stages.llm), ConversationStore(10, 3600, 100))
    return PipelineBackend("voice-pipeline-default", stages, agent, config)


@pytest.fixture
async def session(backend: PipelineBackend) -> AsyncIterator[VoiceSession]:
    chosen = route(backend._config, "test-room", None)
    settings = SessionSettings(
        "session-1", "test-room", None, chosen.persona, turn_taking=chosen.turn_taking
    )
    opened = await backend.open(settings)
    yield opened
    await opened.close()


def trimmed(audio: np.ndarray) -> np.ndarray:
    """Without the silence Piper leaves before and after speech."""
    voiced = np.flatnonzero(np.abs(audio) > 0.02)
    return audio[voiced[0] : voiced[-1] + 1]


async def feed(session: VoiceSession, audio: np.ndarray) -> None:
    """Push audio at real time in 20 ms chunks, as a satellite would."""
    for start in range(0, len(audio), 320):
        session.push_audio(audio[start : start + 320])
        await asyncio.sleep(0.02)


async def next_of(events: AsyncIterator[SessionEvent], kind: type) -> SessionEvent:
    async with asyncio.timeout(60):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__}")


async def test_each_turn_reaches_the_llm_with_the_turns_before_it(
    backend: PipelineBackend, session: VoiceSession, speech: Speech
) -> None:
    events = session.events()
    for question in ("My name is Zorblax.", "What is my name?"):
        await feed(session, np.concatenate([speech.at_16k(question), PAST_ANY_WAIT]))
        samples = 0
        async for event in events:
            if isinstance(event, ReplyAudio):
                samples += len(event.audio) // event.format.frame_bytes
            if isinstance(event, ReplyFinished):
                session.report_played(event.reply_id, samples)  # the satellite played it all
                break
    assert isinstance(backend._agent.llm, PromptLog)
    first, second = backend._agent.llm.prompts
    turns = backend._agent.store.get("session-1").turns
    assert [t.user for t in turns] == [first[-1]["content"], second[-1]["content"]]
    assert "name" in turns[1].user.lower() and turns[0].assistant
    assert first[0] == second[0] and first[0]["role"] == "system"
    assert second[1:3] == [
        {"role": "user", "content": turns[0].user},
        {"role": "assistant", "content": turns[0].assistant},
    ]
    # While the first reply played, the model already read the second prompt up to its
    # new words: that start is what it was given to prefill.
    assert backend._agent.llm.prefills[0] == second[:-1]


async def test_barge_in_keeps_only_the_words_heard(
    backend: PipelineBackend, session: VoiceSession, speech: Speech
) -> None:
    events = session.events()
    await feed(
        session,
        np.concatenate([speech.at_16k("Tell me a long story about a dragon."), PAST_ANY_WAIT]),
    )
    first_audio = await next_of(events, ReplyAudio)
    assert isinstance(first_audio, ReplyAudio)
    await asyncio.sleep(0.5)
    await session.interrupt()
    interrupted = await next_of(events, ReplyInterrupted)
    assert isinstance(interrupted, ReplyInterrupted)
    assert interrupted.reply_id == first_audio.reply_id
    played = first_audio.format.rate  # the satellite says it played one second
    session.report_played(interrupted.reply_id, played)
    turn = backend._agent.store.get("session-1").turns[-1]
    assert turn.user.lower().startswith("tell me a long story")
    assert turn.interrupted
    assert 0 < len(turn.assistant.split()) < 12, turn.assistant


@pytest.mark.parametrize("backend", [{"end_of_turn": "silence", "silence_ms": 3000}], indirect=True)
async def test_an_answer_the_user_talks_over_leaves_no_trace(
    backend: PipelineBackend, session: VoiceSession, speech: Speech
) -> None:
    events = session.events()
    # The user pauses until the speculative answer has got as far as the LLM (its turn is
    # in the history), well inside the 3 s silence wait, and then goes on.
    first = trimmed(speech.at_16k("Please turn on"))
    rest = trimmed(speech.at_16k("the lights in the kitchen."))
    await feed(session, first)
    history = backend._agent.store.get("session-1").turns
    for _ in range(100):  # at most 2 s of pause
        if history:
            break
        await feed(session, np.zeros(320, np.float32))
    assert len(history) == 1  # the speculative answer's
    await feed(session, np.concatenate([rest, *[SILENCE] * 4]))  # past the silence wait
    transcript = await next_of(events, UserTranscript)
    assert isinstance(transcript, UserTranscript)
    assert "kitchen" in transcript.text.lower() and "turn on" in transcript.text.lower()
    await next_of(events, ReplyFinished)
    turns = backend._agent.store.get("session-1").turns
    assert len(turns) == 1
    assert "kitchen" in turns[0].user.lower() and not turns[0].interrupted


@dataclass
class Heard:
    """A session's events as they came, with the moment each came."""

    events: list[tuple[float, SessionEvent]] = field(default_factory=list)
    more: asyncio.Condition = field(default_factory=asyncio.Condition)

    def of(self, kind: type) -> list[tuple[float, SessionEvent]]:
        return [(at, event) for at, event in self.events if isinstance(event, kind)]

    async def add(self, event: SessionEvent) -> None:
        async with self.more:
            self.events.append((asyncio.get_running_loop().time(), event))
            self.more.notify_all()

    async def wait_for(self, kind: type, count: int = 1, timeout_s: float = 60) -> SessionEvent:
        async with asyncio.timeout(timeout_s), self.more:
            await self.more.wait_for(lambda: len(self.of(kind)) >= count)
        return self.of(kind)[count - 1][1]

    async def audio_of(self, reply_id: str, timeout_s: float = 60) -> None:
        """Until the reply's first audio has come."""

        def came() -> bool:
            return any(e.reply_id == reply_id for _, e in self.of(ReplyAudio))  # type: ignore[attr-defined]

        async with asyncio.timeout(timeout_s), self.more:
            await self.more.wait_for(came)


@pytest.fixture
async def heard(session: VoiceSession) -> AsyncIterator[Heard]:
    log = Heard()

    async def listen() -> None:
        async for event in session.events():
            await log.add(event)

    listener = asyncio.create_task(listen())
    yield log
    listener.cancel()


def pause(ms: int) -> np.ndarray:
    return np.zeros(16 * ms, np.float32)


async def ask_until_heard(
    session: VoiceSession, heard: Heard, speech: Speech, question: str
) -> ReplyAudio:
    """Ask, and go on pausing until the reply's first audio has come."""
    await feed(session, np.concatenate([speech.at_16k(question), pause(300)]))
    first = await heard.wait_for(ReplyAudio)
    assert isinstance(first, ReplyAudio)
    return first


async def test_a_pause_mid_thought_is_not_answered(
    backend: PipelineBackend, session: VoiceSession, heard: Heard, speech: Speech
) -> None:
    """ "Turn on the … kitchen light": the model hears the first part is unfinished, so the
    700 ms pause does not end the turn and nothing is heard before the user is done."""
    await feed(session, np.concatenate([trimmed(speech.at_16k("Turn on the")), pause(700)]))
    await feed(session, trimmed(speech.at_16k("kitchen light.")))
    finished_speaking = asyncio.get_running_loop().time()
    await feed(session, PAST_ANY_WAIT)  # past the longest silence wait
    await heard.wait_for(ReplyAudio)
    assert all(at > finished_speaking for at, _ in heard.of(ReplyAudio))
    transcripts = [event.text.lower() for _, event in heard.of(UserTranscript)]  # type: ignore[attr-defined]
    assert len(transcripts) == 1 and "turn on" in transcripts[0] and "kitchen" in transcripts[0]
    turns = backend._agent.store.get("session-1").turns
    assert len(turns) == 1 and "kitchen" in turns[0].user.lower()


async def test_a_finished_question_is_answered_after_a_short_silence(
    session: VoiceSession, heard: Heard, speech: Speech
) -> None:
    await feed(
        session, np.concatenate([speech.at_16k("What is the weather like today?"), PAST_ANY_WAIT])
    )
    finished = await heard.wait_for(ReplyFinished)
    assert isinstance(finished, ReplyFinished)
    assert finished.timings["turn_complete_probability"] >= 0.5
    # Ended as soon as it was judged (and its words transcribed), not after 1600 ms.
    assert finished.timings["silence_wait_ms"] < 1600


@pytest.mark.parametrize("backend", [{"end_of_turn": "silence", "silence_ms": 800}], indirect=True)
async def test_without_the_model_a_turn_ends_on_silence_alone(
    session: VoiceSession, heard: Heard, speech: Speech
) -> None:
    await feed(session, np.concatenate([speech.at_16k("What is the weather like today?"), SILENCE]))
    finished = await heard.wait_for(ReplyFinished)
    assert isinstance(finished, ReplyFinished)
    assert 750 <= finished.timings["silence_wait_ms"] <= 850


async def test_words_right_after_the_reply_starts_join_the_turn(
    backend: PipelineBackend, session: VoiceSession, heard: Heard, speech: Speech
) -> None:
    """The user goes on as the reply starts: the reply is dropped, history and all, and the
    words before and after are answered as one turn."""
    await feed(
        session, np.concatenate([speech.at_16k("What is the weather like today?"), pause(300)])
    )
    first = await heard.wait_for(ReplyAudio)
    assert isinstance(first, ReplyAudio)
    await feed(
        session, np.concatenate([trimmed(speech.at_16k("In Paris, in France.")), PAST_ANY_WAIT])
    )
    interrupted = await heard.wait_for(ReplyInterrupted)
    assert isinstance(interrupted, ReplyInterrupted) and interrupted.reply_id == first.reply_id
    await heard.wait_for(UserTranscript, count=2)
    started = await heard.wait_for(ReplyStarted, count=2)
    assert isinstance(started, ReplyStarted) and started.reply_id != first.reply_id
    whole = heard.of(UserTranscript)[-1][1]
    assert isinstance(whole, UserTranscript)
    assert "weather" in whole.text.lower() and "paris" in whole.text.lower()
    turns = backend._agent.store.get("session-1").turns
    assert [t.user for t in turns] == [whole.text]  # the first reply's turn is gone


async def test_stop_right_after_the_reply_starts_is_a_barge_in(
    backend: PipelineBackend, session: VoiceSession, heard: Heard, speech: Speech
) -> None:
    first = await ask_until_heard(session, heard, speech, "Tell me a long story about a dragon.")
    await feed(session, np.concatenate([trimmed(speech.at_16k("Stop!")), PAST_ANY_WAIT]))
    await heard.wait_for(UserTranscript, count=2)
    assert len(heard.of(ReplyInterrupted)) == 1
    assert all(event.reply_id == first.reply_id for _, event in heard.of(ReplyAudio))  # type: ignore[attr-defined]
    turns = backend._agent.store.get("session-1").turns
    assert len(turns) == 1 and turns[0].user.lower().startswith("tell me a long story")
    assert turns[0].interrupted


@pytest.mark.parametrize("backend", [{"continuation_ms": 1000}], indirect=True)
async def test_speech_well_into_a_reply_is_a_new_turn(
    backend: PipelineBackend, session: VoiceSession, heard: Heard, speech: Speech
) -> None:
    first = await ask_until_heard(session, heard, speech, "Tell me a long story about a dragon.")
    await feed(session, pause(1500))  # the story has been heard for 1.5 s
    await feed(
        session, np.concatenate([trimmed(speech.at_16k("What is your name?")), PAST_ANY_WAIT])
    )
    second = await heard.wait_for(ReplyStarted, count=2)
    assert isinstance(second, ReplyStarted) and second.reply_id != first.reply_id
    turns = backend._agent.store.get("session-1").turns
    assert len(turns) == 2
    assert turns[0].user.lower().startswith("tell me a long story") and turns[0].interrupted
    assert "name" in turns[1].user.lower() and "dragon" not in turns[1].user.lower()


async def test_a_turn_goes_on_once_at_most(
    backend: PipelineBackend, session: VoiceSession, heard: Heard, speech: Speech
) -> None:
    """Speech right after the joined turn's reply starts is a barge-in: otherwise a room
    whose microphone hears its speaker would cut and restart every reply."""
    await feed(
        session, np.concatenate([speech.at_16k("What is the weather like today?"), pause(300)])
    )
    await heard.wait_for(ReplyAudio)
    await feed(session, np.concatenate([trimmed(speech.at_16k("In Paris.")), PAST_ANY_WAIT]))
    joined = await heard.wait_for(ReplyStarted, count=2)
    assert isinstance(joined, ReplyStarted)
    await heard.audio_of(joined.reply_id)
    await feed(
        session, np.concatenate([trimmed(speech.at_16k("What is your name?")), PAST_ANY_WAIT])
    )
    await heard.wait_for(ReplyStarted, count=3)
    turns = backend._agent.store.get("session-1").turns
    assert len(turns) == 2
    assert "paris" in turns[0].user.lower() and turns[0].interrupted
    assert "name" in turns[1].user.lower() and "paris" not in turns[1].user.lower()
