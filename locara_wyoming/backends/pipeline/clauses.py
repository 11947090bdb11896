"""Cut streamed text into the pieces a voice speaks: a short first one, then sentences.

Piper's first audio grows with the text it is given (~65 ms for 3 words, ~200 ms for
12), and a piece is spoken as soon as it exists in the stream, so the first piece is
short: the first clause (a comma, semicolon, colon or spaced dash after at least 3
words), else at most 6 words, cut before a conjunction or preposition when one comes
after the third word. Every later piece is a whole sentence, so that the voice keeps a
sentence's natural rise and fall; a run-on sentence (small models write those) is cut
the same way, at 20 words or more, and at most after 30.

A sentence end or a line break always ends a piece. Abbreviations ("Dr.", "e.g."),
initials and numbers ("3.5", "1,000") stay whole, and a word-count cut never leaves
a piece of one word behind it. A cut is made once no text that may follow could change
it, so text streamed in any pieces (or character by character) is cut exactly as if
it had come at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "etc", "e.g", "i.e", "approx", "no",
}  # fmt: skip

# Words before which a phrase starts: a cut there sounds like a pause a speaker makes.
BREAK_WORDS = {
    "and", "but", "or", "so", "because", "which", "that", "who", "when", "where", "while",
    "if", "unless", "until", "although", "though", "to", "with", "in", "of", "for", "from",
    "at", "about", "into", "after", "before", "during", "without", "since", "near", "under",
    "over", "through", "across", "around", "between", "behind",
}  # fmt: skip

_WORD = re.compile(r"(\S+)(\s+)")  # a word is known once the space after it has come
_CLOSERS = "\"')]*\u201d\u2019"
_SENTENCE_END = re.compile(rf"[.!?\u2026]+[{re.escape(_CLOSERS)}]*$")
_CLAUSE_MARK = re.compile(rf"[,;:][{re.escape(_CLOSERS)}]*$")
_DASHES = {"-", "--", "\u2013", "\u2014"}  # a spaced dash: "word — word"


@dataclass(frozen=True)
class PieceRule:
    """Where a piece may end besides a sentence end or a line break."""

    least_words: int
    """A clause mark ends a piece, or a break word starts the next, after this many words."""
    most_words: int
    """A piece with neither is cut after this many words."""


FIRST_PIECE = PieceRule(least_words=3, most_words=6)
LATER_PIECES = PieceRule(least_words=20, most_words=30)


class SpeechChunker:
    """Streamed text in, pieces to speak out: the first by `first`, the rest by `later`."""

    def __init__(self, first: PieceRule = FIRST_PIECE, later: PieceRule = LATER_PIECES) -> None:
        self._rule = first
        self._later = later
        self._buffer = ""

    def add(self, text: str) -> list[str]:
        """Add streamed text; return the pieces it completed."""
        self._buffer = (self._buffer + text).lstrip()
        pieces = []
        while (cut := self._next_cut()) is not None:
            pieces.append(self._buffer[:cut].strip())
            self._buffer = self._buffer[cut:].lstrip()
            self._rule = self._later
        return pieces

    def finish(self) -> str:
        """The text left at the end of the stream (one piece, possibly empty)."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest

    def _next_cut(self) -> int | None:
        """Where the buffer's first piece ends, once the text that follows says so for sure."""
        rule = self._rule
        words = 0
        for match in _WORD.finditer(self._buffer):
            word, space = match.groups()
            if any(char.isalnum() for char in word):
                if words >= rule.least_words and word.lower() in BREAK_WORDS:
                    return match.start()
                words += 1
            if words and ("\n" in space or _ends_piece(word, words, rule)):
                return match.end()
            if words > rule.most_words:
                # Cut before this word once another follows it, so that it is not left
                # alone as a piece of one word.
                return match.start() if match.end() < len(self._buffer) else None
        return None


def _ends_piece(word: str, words: int, rule: PieceRule) -> bool:
    if _SENTENCE_END.search(word):
        return not _is_abbreviation(word)
    if _CLAUSE_MARK.search(word) or word in _DASHES:
        return words >= rule.least_words
    return False


def _is_abbreviation(word: str) -> bool:
    """Whether the period after `word` belongs to it ("Dr.", "e.g.", "J.") and ends nothing."""
    marked = word.rstrip(_CLOSERS)
    if not marked.endswith(".") or marked.endswith(".."):
        return False
    bare = marked.lstrip("\"'([\u201c\u2018").removesuffix(".").lower()
    return bare in ABBREVIATIONS or (len(bare) == 1 and bare.isalpha())


def split_for_speech(text: str) -> list[str]:
    """A whole text's pieces, as `SpeechChunker` cuts them."""
    chunker = SpeechChunker()
    pieces = chunker.add(text)
    if rest := chunker.finish():
        pieces.append(rest)
    return pieces
