"""Turn-taking without models: pauses settled by a judgement, continuations, configuration."""

from __future__ import annotations

import pytest

from locara_wyoming.backends.base import TurnTaking
from locara_wyoming.backends.pipeline.continuation import is_stop_request
from locara_wyoming.backends.pipeline.endings import sounds_unfinished
from locara_wyoming.backends.pipeline.turns import SpeechPaused, TurnDetector, TurnEnded
from locara_wyoming.config import ConfigError, parse_config
from locara_wyoming.sessions.routing import route

SPEECH, SILENCE = 0.9, 0.05


def detector(undecided_ms: int = 1600) -> TurnDetector:
    return TurnDetector(
        frame_ms=32,
        threshold=0.5,
        silence_ms=undecided_ms,
        min_speech_ms=96,
        guard_ms=128,
        speculate_ms=96,
    )


def run(turns: TurnDetector, probability: float, frames: int) -> list[object]:
    return [event for _ in range(frames) for event in turns.update(probability)]


def test_an_unsettled_pause_waits_the_long_silence() -> None:
    turns = detector()
    run(turns, SPEECH, 10)
    events = run(turns, SILENCE, 49)
    assert [type(e) for e in events] == [SpeechPaused]
    assert run(turns, SILENCE, 1) == [TurnEnded(speech_end_ms=320, silence_ms=1600)]


def test_a_pause_judged_complete_ends_after_the_short_silence() -> None:
    turns = detector()
    run(turns, SPEECH, 10)
    (paused,) = run(turns, SILENCE, 3)
    assert isinstance(paused, SpeechPaused) and paused.pause == 1
    run(turns, SILENCE, 1)  # the judgement takes a frame to come back
    assert turns.settle(paused.pause, 192) is None  # 128 ms of silence so far
    assert run(turns, SILENCE, 1) == []
    assert run(turns, SILENCE, 1) == [TurnEnded(speech_end_ms=320, silence_ms=192)]


def test_a_judgement_that_comes_late_ends_the_turn_at_once() -> None:
    turns = detector()
    run(turns, SPEECH, 10)
    (paused,) = run(turns, SILENCE, 3)
    run(turns, SILENCE, 5)  # 256 ms of silence: the model was slow
    assert isinstance(paused, SpeechPaused)
    assert turns.settle(paused.pause, 192) == TurnEnded(speech_end_ms=320, silence_ms=256)
    assert not turns.in_speech


def test_a_judgement_of_a_pause_the_user_spoke_after_changes_nothing() -> None:
    turns = detector()
    run(turns, SPEECH, 10)
    (first,) = run(turns, SILENCE, 3)
    run(turns, SPEECH, 5)  # the user went on
    assert isinstance(first, SpeechPaused)
    assert turns.settle(first.pause, 64) is None
    (second,) = run(turns, SILENCE, 3)
    assert isinstance(second, SpeechPaused) and second.pause == first.pause + 1
    assert turns.settle(first.pause, 64) is None  # still the old pause's judgement
    assert run(turns, SILENCE, 30) == []  # the new pause waits its own, long, silence


def test_each_pause_starts_undecided_again() -> None:
    turns = detector()
    run(turns, SPEECH, 10)
    (first,) = run(turns, SILENCE, 3)
    assert isinstance(first, SpeechPaused)
    assert turns.settle(first.pause, 1600) is None  # judged unfinished
    run(turns, SPEECH, 5)
    run(turns, SILENCE, 3)
    assert run(turns, SILENCE, 46) == []
    (ended,) = run(turns, SILENCE, 1)
    assert ended == TurnEnded(speech_end_ms=15 * 32 + 3 * 32, silence_ms=1600)


@pytest.mark.parametrize(
    ("words", "stop"),
    [
        ("Stop.", True),
        ("Stop!", True),
        ("Okay, stop.", True),
        ("Never mind.", True),
        ("That's enough.", True),
        ("in Paris?", False),
        ("stop the music in the kitchen", False),
        ("", False),
    ],
)
def test_stop_requests_are_told_from_more_words(words: str, stop: bool) -> None:
    assert is_stop_request(words) is stop


def test_turn_taking_comes_from_sessions_then_area_then_satellite() -> None:
    config = parse_config(
        {
            "sessions": {"incomplete_silence_ms": 2000, "continuation_ms": 1000},
            "rooms": [
                {"area": "Study", "end_of_turn": "silence"},
                {"satellite": "desk", "incomplete_silence_ms": 2500},
                {"satellite": "hall", "incomplete_silence_ms": 150},
            ],
        }
    )
    assert route(config, "attic", None).turn_taking == TurnTaking(
        "smart-turn", 200, 2000, 1000, 400
    )
    desk = route(config, "desk", "Study").turn_taking
    assert (desk.end_of_turn, desk.incomplete_silence_ms) == ("silence", 2500)
    # A room that shortens the unfinished wait below the finished one shortens both.
    hall = route(config, "hall", None).turn_taking
    assert (hall.complete_silence_ms, hall.incomplete_silence_ms) == (150, 150)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"sessions": {"complete_silence_ms": 900, "incomplete_silence_ms": 800}},
            r"complete_silence_ms \(900\) must not be longer than incomplete_silence_ms \(800\)",
        ),
        ({"sessions": {"end_of_turn": "guess"}}, r"sessions.end_of_turn = 'guess'"),
        ({"rooms": [{"area": "Hall", "continuation_ms": -1}]}, r"rooms.0.continuation_ms = -1"),
        ({"turn_end": {"threshold": 1.5}}, r"turn_end.threshold = 1.5"),
    ],
)
def test_bad_turn_taking_settings_are_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


@pytest.mark.parametrize(
    ("transcript", "unfinished"),
    [
        ("I would like to...", True),
        ("Could you tell me about the", True),
        ("I need eggs,", True),
        ("So the thing is \u2014", True),
        ("Set a timer for my", True),
        ("Um.", True),
        ("Turn on the kitchen light.", False),
        ("What is the weather like today?", False),
        ("Turn the light on", False),
        ("", False),
    ],
)
def test_words_that_cannot_end_a_sentence(transcript: str, unfinished: bool) -> None:
    assert sounds_unfinished(transcript) is unfinished
