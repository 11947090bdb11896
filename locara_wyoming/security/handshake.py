"""One connection's side of the exchange in protocol/auth.py: start TLS when asked,
then check who the client claims to be, prove the server, and check the client.

Until the exchange ends, the connection is a stranger's: it may use the standard
programs, and nothing else that needs a proof. A proof that fails closes the
connection; so does anything sent out of order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from wyoming.event import Event

from ..errors import StorageFailed, Unauthorized
from ..protocol import WriteEvent
from ..protocol.auth import (
    AUTH_TYPE,
    PROOF_TYPE,
    TLS_READY_TYPE,
    TLS_TYPE,
    AuthChallenge,
    AuthDone,
    AuthError,
    AuthHello,
    AuthProof,
    make_proof,
    new_nonce,
    proofs_match,
)
from .enrolment import EnrolmentError
from .principal import STRANGER, Principal
from .server_security import ServerSecurity

_LOGGER = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT_S = 10.0


class AuthFailed(Unauthorized):
    """A failed or broken exchange: answered, then the connection is closed."""

    closes = True


class ServerHandshake:
    def __init__(
        self,
        security: ServerSecurity,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        write: WriteEvent,
        on_proven: Callable[[Principal], None],
        peer: object,
    ) -> None:
        self._security = security
        self._reader = reader
        self._writer = writer
        self._write = write
        self._on_proven = on_proven
        self._peer = peer
        self.principal = STRANGER
        self.encrypted = False
        self._pending: tuple[AuthHello, str, bytes] | None = None

    def handlers(self) -> dict[str, Callable[[Event], Awaitable[None]]]:
        return {TLS_TYPE: self.start_tls, AUTH_TYPE: self.hello, PROOF_TYPE: self.proof}

    async def start_tls(self, event: Event) -> None:
        """`locara-tls`: the connection's first event; TLS starts after the answer."""
        if self.encrypted:
            raise AuthFailed("TLS has already started on this connection")
        # Anything the client sent after asking for TLS would be read as if it had come
        # encrypted (the STARTTLS injection): the client must wait for the answer.
        buffered = getattr(self._reader, "_buffer", None)
        if not isinstance(buffered, bytearray) or buffered:
            raise AuthFailed("data arrived after locara-tls, before TLS started")
        await self._write(Event(TLS_READY_TYPE))
        try:
            await self._writer.start_tls(
                self._security.tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S
            )
        except (ConnectionError, OSError, TimeoutError) as error:
            # The plain connection cannot carry an answer any more: just end it.
            _LOGGER.info("%s: the TLS handshake failed: %s", self._peer, error)
            raise ConnectionResetError("TLS handshake failed") from error
        self.encrypted = True

    async def hello(self, event: Event) -> None:
        """`locara-auth`: who the client claims to be; the server proves itself."""
        if not self.encrypted:
            raise AuthFailed("start TLS first (locara-tls)")
        if self.principal is not STRANGER or self._pending is not None:
            raise AuthFailed("this connection has already begun proving itself")
        try:
            hello = AuthHello.from_event(event)
        except AuthError as error:
            raise AuthFailed(str(error)) from None
        try:
            key = self._security.key_for(hello.role, hello.name)
        except EnrolmentError as error:
            _LOGGER.error("%s", error)
            raise StorageFailed("the enrolled satellites cannot be read") from None
        if key is None:
            _LOGGER.warning("%s: %s %r is not enrolled", self._peer, hello.role, hello.name)
            raise AuthFailed(
                f"{hello.name!r} is not an enrolled satellite: enrol it on the server "
                "(`locara-wyoming satellites add NAME`) and pair it with the code"
            )
        nonce = new_nonce()
        fingerprint = self._security.certificate.fingerprint
        proof = make_proof(key, "server", hello, nonce, fingerprint)
        self._pending = (hello, nonce, key)
        challenge = AuthChallenge(self._security.identity.server_id, nonce, proof)
        await self._write(challenge.event())

    async def proof(self, event: Event) -> None:
        """`locara-auth-proof`: the client proves it holds the key, or is sent away."""
        if self._pending is None:
            raise AuthFailed("locara-auth-proof before locara-auth")
        hello, nonce, key = self._pending
        self._pending = None
        try:
            sent = AuthProof.from_event(event)
        except AuthError as error:
            raise AuthFailed(str(error)) from None
        fingerprint = self._security.certificate.fingerprint
        if not proofs_match(make_proof(key, "client", hello, nonce, fingerprint), sent.proof):
            _LOGGER.warning("%s: a wrong proof for %s %r", self._peer, hello.role, hello.name)
            raise AuthFailed(f"the proof for {hello.role} {hello.name!r} is wrong")
        self.principal = Principal(hello.role, hello.name)
        _LOGGER.info("%s: proved itself as %s %s", self._peer, hello.role, hello.name)
        self._on_proven(self.principal)
        await self._write(AuthDone(hello.role, hello.name).event())
