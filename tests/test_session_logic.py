"""The voice session's pure parts: turn detection, what was heard, routing."""

from __future__ import annotations

import pytest
from wyoming.event import Event

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.backends.pipeline.reply import Reply, SpokenClause
from locara_wyoming.backends.pipeline.turns import (
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechSustained,
    TurnDetector,
    TurnEnded,
)
from locara_wyoming.config import parse_config
from locara_wyoming.protocol.session import SessionRequest, SessionRequestError
from locara_wyoming.sessions.routing import route


def detector() -> TurnDetector:
    return TurnDetector(
        frame_ms=32, threshold=0.5, silence_ms=320, min_speech_ms=96, guard_ms=192, speculate_ms=96
    )


def feed(turns: TurnDetector, probabilities: list[float]) -> list[tuple[int, object]]:
    return [(index, event) for index, p in enumerate(probabilities) for event in turns.update(p)]


def test_a_turn_starts_pauses_and_ends() -> None:
    events = feed(detector(), [0.0] * 3 + [0.9] * 10 + [0.05] * 12)
    kinds = [type(event) for _, event in events]
    assert kinds == [SpeechStarted, SpeechSustained, SpeechPaused, TurnEnded]
    started, _, paused, ended = (event for _, event in events)
    assert isinstance(started, SpeechStarted) and started.at_ms == 3 * 32
    assert isinstance(paused, SpeechPaused) and (paused.speech_end_ms, paused.pause) == (13 * 32, 1)
    assert ended == TurnEnded(speech_end_ms=13 * 32, silence_ms=320)
    assert events[-1][0] == 13 + 10 - 1  # ten silent frames = 320 ms of silence wait


def test_blips_shorter_than_min_speech_are_ignored() -> None:
    assert feed(detector(), [0.9, 0.9, 0.0, 0.9, 0.0, 0.0]) == []


def test_speech_resuming_in_the_pause_continues_the_turn() -> None:
    events = feed(detector(), [0.9] * 5 + [0.0] * 4 + [0.9] * 5 + [0.0] * 11)
    kinds = [type(event) for _, event in events]
    # The guard counts from the start of speech, but only fires while speech goes on.
    assert kinds == [
        SpeechStarted,
        SpeechPaused,
        SpeechResumed,
        SpeechSustained,
        SpeechPaused,
        TurnEnded,
    ]


def test_hysteresis_band_keeps_speech_going() -> None:
    events = feed(detector(), [0.9] * 4 + [0.4] * 20)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechSustained]


def test_force_end_closes_a_turn_mid_speech() -> None:
    turns = detector()
    feed(turns, [0.9] * 8)
    assert turns.force_end() == TurnEnded(8 * 32, 0)
    assert not turns.in_speech


def reply_with_clauses() -> Reply:
    reply = Reply("r1", PcmFormat(22050, 2, 1))
    reply.clauses = [
        SpokenClause("Once upon a time,", 0, 1000),
        SpokenClause("there was a dragon who loved gold.", 1000, 3000),
    ]
    return reply


@pytest.mark.parametrize(
    ("played", "heard"),
    [
        (0, ""),
        (499, "Once"),
        (1000, "Once upon a time,"),
        (2000, "Once upon a time, there was a"),
        (5000, "Once upon a time, there was a dragon who loved gold."),
    ],
)
def test_heard_text_follows_the_played_samples(played: int, heard: str) -> None:
    assert reply_with_clauses().heard_text(played) == heard


def test_routing_prefers_satellite_name_over_area() -> None:
    config = parse_config(
        {
            "personas": [{"name": "locara"}, {"name": "chef"}, {"name": "kid"}],
            "rooms": [
                {"area": "Kitchen", "persona": "chef", "backend": "voice-pipeline-big"},
                {"satellite": "fridge", "persona": "kid"},
            ],
        }
    )
    assert route(config, "fridge", "Kitchen").persona.name == "kid"
    assert route(config, "fridge", "Kitchen").backend == "voice-pipeline-big"
    assert route(config, "stove", "Kitchen").persona.name == "chef"
    other = route(config, "attic", None)
    assert (other.backend, other.persona.name) == ("voice-pipeline-default", "locara")


def test_rooms_must_name_existing_personas() -> None:
    from locara_wyoming.config import ConfigError

    with pytest.raises(ConfigError, match=r"rooms\[0\].persona = 'ghost'"):
        parse_config({"rooms": [{"area": "Hall", "persona": "ghost"}]})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"locara": "kitchen"}, "must be an object"),
        ({"locara": {}}, "needs the satellite's name"),
        ({"locara": {"name": "k", "protocol": 9}}, "protocol 9 is not supported"),
        ({"locara": {"name": "k", "area": 3}}, "area must be a string"),
        ({"locara": {"name": "k", "capabilities": "all"}}, "capabilities must be a list"),
    ],
)
def test_bad_session_requests_are_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(SessionRequestError, match=message):
        SessionRequest.from_run_pipeline(Event("run-pipeline", data))


def test_plain_run_pipeline_is_not_a_session_request() -> None:
    assert SessionRequest.from_run_pipeline(Event("run-pipeline", {"start_stage": "asr"})) is None
