"""A user who goes on after the reply began: more of the same turn, or "stop"?

When the user speaks again within `continuation_ms` of a reply becoming audible,
the reply was an answer to half a thought: the words before and after are
transcribed together and answered as one turn. Unless the new words, transcribed
on their own, only ask the assistant to stop: that is a barge-in, and the reply's
history keeps what was heard, as with any barge-in.
"""

from __future__ import annotations

import re

STOP_REQUESTS = frozenset(
    {
        "stop", "stop it", "stop please", "please stop", "stop stop", "okay stop", "ok stop",
        "cancel", "cancel that", "never mind", "nevermind", "forget it", "wait",
        "quiet", "be quiet", "shut up", "enough", "that's enough", "that is enough",
        "no stop", "hush", "stop the timer", "stop timer", "stop the alarm", "turn it off",
    }
)  # fmt: skip

_WORD = re.compile(r"[a-z']+")


def is_stop_request(words: str) -> bool:
    """Whether `words` only ask the assistant to stop ("Stop!", "never mind")."""
    return " ".join(_WORD.findall(words.lower())) in STOP_REQUESTS
