"""One vocabulary for every refusal the server tells a client about.

A refusal is a `LocaraError`: a `code` a program can act on and a `text` a person can
read. Each kind below fixes its code; the modules that refuse raise one of them (or
their own subclass of one), and one place, the connection, turns it into Wyoming's
`error` event. Anything else that escapes a handler is our bug: it is logged with its
traceback and answered as `internal`. docs/protocol.md lists the codes.
"""

from __future__ import annotations


class LocaraError(Exception):
    """A refusal: answered with an `error` event of `code` and `text`."""

    code = "internal"
    closes = False
    """Whether the connection is closed after the answer."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class BadRequest(LocaraError):
    """Well-formed, but not something the server can do (a bad setting, a missing field)."""

    code = "bad-request"


class BadEvent(LocaraError):
    """An event whose fields are missing or of the wrong type."""

    code = "bad-event"


class BadAudioFormat(LocaraError):
    code = "bad-audio-format"


class UnknownEvent(LocaraError):
    code = "unknown-event"


class OutOfOrder(LocaraError):
    """An event that needs another first (audio-chunk before audio-start)."""

    code = "out-of-order"


class NotFound(LocaraError):
    """No such program, voice, satellite or area."""

    code = "not-found"


class TooLarge(LocaraError):
    """Text or audio over the configured limits."""

    code = "too-large"


class TooFast(LocaraError):
    """A session's audio sent faster than a microphone could make it: the excess is
    dropped, the session goes on."""

    code = "too-fast"


class Busy(LocaraError):
    """At a limit (sessions, queued requests, a model's queue): try again later."""

    code = "busy"


class RemoteFailed(LocaraError):
    """A remote stage (an OpenAI-compatible or Wyoming endpoint) failed."""

    code = "remote-failed"


class Unauthorized(LocaraError):
    """A wrong or missing token."""

    code = "unauthorized"


class Forbidden(LocaraError):
    """Not allowed from this client."""

    code = "forbidden"


class StorageFailed(LocaraError):
    """The server could not write its own file (a full disk, a read-only directory):
    nothing changed."""

    code = "storage-failed"


class Timeout(LocaraError):
    """The client was too slow: no event within the idle or keep-alive time."""

    code = "timeout"


class NoAnswer(LocaraError):
    """A room asked a question (`locara-announce` with `answer`) said nothing in time."""

    code = "no-answer"
