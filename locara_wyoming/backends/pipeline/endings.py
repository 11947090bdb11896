"""Whether a transcript stops where no sentence can: a second opinion on the end of turn.

The end-of-turn model hears intonation; the speculative transcription of the same
words is ready at about the same moment. Words that cannot end a sentence ("the",
"to", "and", "my", a hesitation) or a trailing ellipsis, comma or dash in Whisper's
text mean the user is mid-thought, whatever the intonation sounded like. Nothing
here can call a turn finished: only the model does.
"""

from __future__ import annotations

import re

DANGLING_WORDS = frozenset(
    {
        "a", "an", "the", "to", "of", "for", "with", "from", "about", "at", "by", "into",
        "and", "or", "but", "because", "if", "than", "my", "your", "our", "their", "his",
        "her", "its", "um", "uh", "er", "erm", "hmm",
    }
)  # fmt: skip
_LAST_WORD = re.compile(r"([a-z']+)\W*$")
_TRAILING_MARKS = (",", "...", "\u2026", "-", "\u2013", "\u2014")


def sounds_unfinished(transcript: str) -> bool:
    """True when `transcript` ends on a word or mark after which more must come."""
    text = transcript.strip().lower()
    if text.endswith(_TRAILING_MARKS):
        return True
    last = _LAST_WORD.search(text)
    return last is not None and last.group(1) in DANGLING_WORDS
