"""How a reply's text is cut into the pieces a voice speaks: a short first, then sentences."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locara_wyoming.backends.pipeline.clauses import SpeechChunker, split_for_speech


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        # The first clause, at a clause mark after three words or more.
        ("Once upon a time, there was a dragon.", ["Once upon a time,", "there was a dragon."]),
        ("The answer is simple; go left.", ["The answer is simple;", "go left."]),
        ("Here is the plan: go left.", ["Here is the plan:", "go left."]),
        ("I checked the lights — all are off.", ["I checked the lights —", "all are off."]),
        # A mark after fewer words is no place to cut; a sentence end always is.
        ("Hi, there is a light on.", ["Hi, there is a light on."]),
        ("Sure! The weather is fine, thanks.", ["Sure!", "The weather is fine, thanks."]),
        # No mark: cut before a conjunction or preposition after three words or more.
        ("The weather in Paris is sunny and warm today.",
         ["The weather in Paris is sunny", "and warm today."]),
        ("Turn the light to blue with a fade.", ["Turn the light", "to blue with a fade."]),
        ("I will call you because it is late.", ["I will call you", "because it is late."]),
        # Neither: cut after six words.
        ("I have turned on the kitchen light for you.",
         ["I have turned on the kitchen", "light for you."]),
        # A short sentence is one piece.
        ("The lights are on now.", ["The lights are on now."]),
        ("Okay.", ["Okay."]),
        # ...and a seventh word that ends the sentence or a clause is not left alone.
        ("I have turned on the kitchen light. Enjoy!",
         ["I have turned on the kitchen light.", "Enjoy!"]),
        ("I have turned on the kitchen light, enjoy!",
         ["I have turned on the kitchen light,", "enjoy!"]),
        # Abbreviations, initials and numbers stay whole.
        ("Dr. Smith says it is 21.5 degrees.", ["Dr. Smith says it is 21.5 degrees."]),
        ("Say e.g. hello to J. Doe now.", ["Say e.g. hello", "to J. Doe now."]),
        ("We sold 1,000 apples, and more.", ["We sold 1,000 apples,", "and more."]),
        # A line break always ends a piece.
        ("First line\nSecond line", ["First line", "Second line"]),
    ],
)  # fmt: skip
def test_the_first_piece_is_a_clause_or_a_few_words(text: str, pieces: list[str]) -> None:
    assert split_for_speech(text) == pieces


def test_later_pieces_are_whole_sentences() -> None:
    text = (
        "Good morning, Sam. The weather today is sunny, with a high of 21 degrees and a "
        "light wind from the west. Take a jacket, though; it gets cold at night. Bye!"
    )
    assert split_for_speech(text) == [
        "Good morning, Sam.",
        "The weather today is sunny, with a high of 21 degrees and a light wind from the west.",
        "Take a jacket, though; it gets cold at night.",
        "Bye!",
    ]


def test_a_run_on_sentence_is_cut_at_twenty_words_or_more() -> None:
    numbers = " ".join(f"n{n}" for n in range(1, 41))
    run_on = (
        "Sure. There was a dragon who loved gold and lived in a cave near a village where "
        "people baked bread every day and sang songs every evening while it slept."
    )
    assert split_for_speech(run_on) == [
        "Sure.",
        "There was a dragon who loved gold and lived in a cave near a village where "
        "people baked bread every day",
        "and sang songs every evening while it slept.",
    ]
    assert split_for_speech(f"Sure. {numbers}.") == [
        "Sure.",
        " ".join(f"n{n}" for n in range(1, 31)),
        " ".join(f"n{n}" for n in range(31, 41)) + ".",
    ]
    commas = "Sure. " + ", ".join(f"n{n} n{n}" for n in range(1, 21)) + "."
    assert [len(piece.split()) for piece in split_for_speech(commas)] == [1, 20, 20]


def test_a_piece_is_given_as_soon_as_the_text_decides_it() -> None:
    chunker = SpeechChunker()
    assert chunker.add("Once upon a time,") == []  # "time,," or "time,5" may follow
    assert chunker.add(" there") == ["Once upon a time,"]
    chunker = SpeechChunker()
    assert chunker.add("I have turned on the kitchen light ") == []  # "light." may follow
    assert chunker.add("f") == ["I have turned on the kitchen"]
    assert chunker.add("or you. And") == ["light for you."]
    assert chunker.finish() == "And"
    assert chunker.finish() == ""


TEXTS = [
    "Sure! The weather today is sunny, with a high of 21.5 degrees. Dr. Smith says hi.",
    "The weather in Paris is sunny and warm today.\nIt will rain tomorrow afternoon.",
    "I have turned on the kitchen light for you. " + " ".join(["word"] * 45) + ". Done.",
]


@given(st.sampled_from(TEXTS), st.lists(st.integers(0, 200), max_size=30))
def test_streamed_text_is_cut_as_the_whole_text(text: str, cuts: list[int]) -> None:
    bounds = [0, *sorted(c % (len(text) + 1) for c in cuts), len(text)]
    chunker = SpeechChunker()
    pieces = [piece for a, b in itertools.pairwise(bounds) for piece in chunker.add(text[a:b])]
    pieces += [rest] if (rest := chunker.finish()) else []
    assert pieces == split_for_speech(text)


def test_character_by_character_gives_the_same_pieces() -> None:
    for text in TEXTS:
        chunker = SpeechChunker()
        pieces = [piece for char in text for piece in chunker.add(char)]
        assert [*pieces, chunker.finish()] == split_for_speech(text)
