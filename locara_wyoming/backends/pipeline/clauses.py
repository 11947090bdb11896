"""Cut an LLM's streamed text into clauses that can be spoken one by one.

`sentence-stream` (used by the tts program) cuts only at sentence ends. A voice
reply's first audio should not wait for a whole sentence, so this also cuts at
commas, semicolons, colons and dashes once a clause has a few words, while
keeping abbreviations ("Dr.", "e.g.") and numbers ("3.5", "1,000") whole. A run of
words with no mark at all (small models write those) is cut after `max_clause_words`,
so that speech never waits for a whole long sentence.
"""

from __future__ import annotations

import re

ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "etc", "e.g", "i.e", "approx", "no",
}  # fmt: skip

# Sentence ends, clause marks, or a spaced dash (hyphen, en dash, em dash), then a space.
_BOUNDARY = re.compile(r"([.!?\u2026]+|[,;:]|\s[-\u2013\u2014])[\"')\]]*(?=\s)|\n+")


class ClauseChunker:
    def __init__(self, min_clause_words: int = 3, max_clause_words: int = 12) -> None:
        self.min_clause_words = min_clause_words
        self._too_long = re.compile(rf"\s*(?:\S+\s+){{{max_clause_words}}}")
        self._buffer = ""

    def add(self, text: str) -> list[str]:
        """Add streamed text; return the clauses it completed."""
        self._buffer += text
        clauses = []
        search_from = 0
        while (match := _BOUNDARY.search(self._buffer, search_from)) is not None:
            candidate = self._buffer[: match.end()]
            if self._is_boundary(candidate, match.group(0)):
                clauses.append(candidate.strip())
                self._buffer = self._buffer[match.end() :].lstrip()
                search_from = 0
            else:
                search_from = match.end()
        while (run := self._too_long.match(self._buffer)) and self._buffer[run.end() :]:
            clauses.append(run.group(0).strip())
            self._buffer = self._buffer[run.end() :]
        return [clause for clause in clauses if clause]

    def finish(self) -> str:
        rest, self._buffer = self._buffer.strip(), ""
        return rest

    def _is_boundary(self, candidate: str, mark: str) -> bool:
        mark = mark.strip()
        if not mark:  # a line break
            return True
        words = candidate.split()
        if mark[0] in ".!?\u2026":
            last = words[-1].rstrip(".!?\u2026\"')]").lower() if words else ""
            return last not in ABBREVIATIONS and not (len(last) == 1 and last.isalpha())
        return len(words) >= self.min_clause_words
