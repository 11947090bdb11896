"""Word errors of transcripts against the text that was spoken (jiwer), ignoring case
and punctuation: what matters to a voice assistant is the words."""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

_WORDS = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),  # type: ignore[no-untyped-call]  # jiwer leaves it untyped
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


@dataclass(frozen=True)
class WordErrors:
    errors: int
    """Words substituted, deleted and inserted, all transcripts together."""
    words: int
    """Words in the spoken texts."""

    @property
    def rate(self) -> float:
        return self.errors / self.words


def word_errors(spoken: list[str], heard: list[str]) -> WordErrors:
    """The word errors of each transcript in `heard` against the text in `spoken`."""
    found = jiwer.process_words(
        spoken, heard, reference_transform=_WORDS, hypothesis_transform=_WORDS
    )
    errors = found.substitutions + found.deletions + found.insertions
    return WordErrors(errors, found.hits + found.substitutions + found.deletions)
