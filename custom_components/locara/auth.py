"""Who is at each end of a connection: TLS with the server's own certificate, then a
challenge-response over a key both ends hold, proving each to the other.

The room path (enrolled satellites) and the control path (Home Assistant's integration)
both start this way; the standard programs (`asr`, `tts`, `handle`, `describe`) stay
plain Wyoming, as Home Assistant's built-in integration speaks it. docs/security.md says
why, docs/protocol.md ("Proving who is at each end") shows the exchange:

    client → locara-tls                      (plain) ask to start TLS
    server → locara-tls-ready                (plain) then both start TLS
    client → locara-auth {role, name, nonce}
    server → locara-auth-challenge {server_id, nonce, proof}
    client → locara-auth-proof {proof}       after checking the server's proof
    server → locara-auth-done {role, name}   or `error` (`unauthorized`) and a close

The key is the server's token for the role `control`, a satellite's own credential (made
at enrolment) for the role `satellite`; it never crosses the network. Each proof is an
HMAC-SHA256 over both fresh nonces, the side that makes it, the role, the name, and the
SHA-256 fingerprint of the TLS certificate as that end sees it: a relay in the middle
with a certificate of its own makes the proofs disagree, so a client that has not
pinned the certificate yet (Home Assistant before its first connection) still knows it
talks to the holder of the key, over a channel nobody else can read. Proofs are
compared in constant time.

One definition, two copies, like `control.py`: this file is
`locara_wyoming/protocol/auth.py`, and `custom_components/locara/auth.py` is a
byte-identical copy (tests/test_control_protocol.py checks). It imports only the
standard library and `wyoming`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import secrets
import ssl
from dataclasses import dataclass
from typing import Any

from wyoming.client import AsyncTcpClient
from wyoming.event import Event, Eventable

TLS_TYPE = "locara-tls"
TLS_READY_TYPE = "locara-tls-ready"
AUTH_TYPE = "locara-auth"
CHALLENGE_TYPE = "locara-auth-challenge"
PROOF_TYPE = "locara-auth-proof"
AUTH_DONE_TYPE = "locara-auth-done"
AUTH_TYPES = frozenset({TLS_TYPE, AUTH_TYPE, PROOF_TYPE})
"""What a client sends in the exchange."""

ROLE_CONTROL = "control"
ROLE_SATELLITE = "satellite"
ROLES = (ROLE_CONTROL, ROLE_SATELLITE)
NONCE_BYTES = 32
KEY_BYTES = 32
PAIRING_PREFIX = "locara1-"
_SERVER_ID_BYTES = 16
_CHECK_BYTES = 4
_PROOF_LABEL = b"locara-auth-v1"


class AuthError(Exception):
    """The other end could not prove itself, or broke the exchange; the text says how.
    `code` is the server's error code when it refused (`unauthorized`, `forbidden`…)."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.code = code


def _hex(data: dict[str, Any], key: str, size: int, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or len(value) != 2 * size:
        raise AuthError(f"{where}: {key!r} must be {2 * size} hexadecimal digits")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise AuthError(f"{where}: {key!r} must be {2 * size} hexadecimal digits") from None
    return value


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AuthError(f"{where}: {key!r} must be a non-blank string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AuthError(f"{where}: {key!r} is not valid text") from None
    return value


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def certificate_fingerprint(der: bytes) -> str:
    """The SHA-256 of a certificate in DER form, in hexadecimal."""
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class AuthHello(Eventable):
    """The client says who it claims to be, with its nonce."""

    role: str
    name: str
    nonce: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == AUTH_TYPE

    def event(self) -> Event:
        return Event(AUTH_TYPE, {"role": self.role, "name": self.name, "nonce": self.nonce})

    @staticmethod
    def from_event(event: Event) -> AuthHello:
        role = _text(event.data, "role", AUTH_TYPE)
        if role not in ROLES:
            raise AuthError(f"{AUTH_TYPE}: 'role' must be one of {', '.join(ROLES)}")
        return AuthHello(
            role=role,
            name=_text(event.data, "name", AUTH_TYPE),
            nonce=_hex(event.data, "nonce", NONCE_BYTES, AUTH_TYPE),
        )


@dataclass(frozen=True)
class AuthChallenge(Eventable):
    """The server's nonce, and its proof that it holds the key."""

    server_id: str
    nonce: str
    proof: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == CHALLENGE_TYPE

    def event(self) -> Event:
        data = {"server_id": self.server_id, "nonce": self.nonce, "proof": self.proof}
        return Event(CHALLENGE_TYPE, data)

    @staticmethod
    def from_event(event: Event) -> AuthChallenge:
        return AuthChallenge(
            server_id=_text(event.data, "server_id", CHALLENGE_TYPE),
            nonce=_hex(event.data, "nonce", NONCE_BYTES, CHALLENGE_TYPE),
            proof=_hex(event.data, "proof", 32, CHALLENGE_TYPE),
        )


@dataclass(frozen=True)
class AuthProof(Eventable):
    """The client's proof that it holds the key."""

    proof: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == PROOF_TYPE

    def event(self) -> Event:
        return Event(PROOF_TYPE, {"proof": self.proof})

    @staticmethod
    def from_event(event: Event) -> AuthProof:
        return AuthProof(proof=_hex(event.data, "proof", 32, PROOF_TYPE))


@dataclass(frozen=True)
class AuthDone(Eventable):
    """The server accepted the client's proof: the connection is `role` `name` now."""

    role: str
    name: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == AUTH_DONE_TYPE

    def event(self) -> Event:
        return Event(AUTH_DONE_TYPE, {"role": self.role, "name": self.name})

    @staticmethod
    def from_event(event: Event) -> AuthDone:
        return AuthDone(
            role=_text(event.data, "role", AUTH_DONE_TYPE),
            name=_text(event.data, "name", AUTH_DONE_TYPE),
        )


def make_proof(key: bytes, side: str, hello: AuthHello, server_nonce: str, fingerprint: str) -> str:
    """The proof of `side` ("server" or "client") that it holds `key`, for this exchange."""
    parts = [_PROOF_LABEL, side.encode(), hello.role.encode(), hello.name.encode()]
    parts += [bytes.fromhex(hello.nonce), bytes.fromhex(server_nonce), fingerprint.encode()]
    message = b"\0".join(len(part).to_bytes(4, "big") + part for part in parts)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def proofs_match(expected: str, sent: str) -> bool:
    return hmac.compare_digest(expected.encode(), sent.encode())


def token_key(token: str) -> bytes:
    """The key of the role `control`: the server's token."""
    return token.encode("utf-8")


# -- pairing codes ------------------------------------------------------------------


@dataclass(frozen=True)
class PairingCode:
    """What a satellite needs to find, trust and prove itself to its server, made at
    enrolment and copied to the satellite by hand (it holds the satellite's key)."""

    server_id: str
    fingerprint: str
    name: str
    key: bytes

    def encode(self) -> str:
        """`locara1-` and, in URL-safe base64: the server id (16 bytes), the certificate's
        fingerprint (32), the key (32), the name (UTF-8), and a 4-byte check."""
        packed = (
            bytes.fromhex(self.server_id)
            + bytes.fromhex(self.fingerprint)
            + self.key
            + self.name.encode("utf-8")
        )
        packed += hashlib.sha256(packed).digest()[:_CHECK_BYTES]
        return PAIRING_PREFIX + base64.urlsafe_b64encode(packed).decode().rstrip("=")

    @staticmethod
    def decode(code: str) -> PairingCode:
        """A pairing code as `encode` made it; AuthError naming what is wrong."""
        code = code.strip()
        if not code.startswith(PAIRING_PREFIX):
            raise AuthError(f"a pairing code starts with {PAIRING_PREFIX!r}")
        text = code[len(PAIRING_PREFIX) :]
        try:
            packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            packed = b""
        body, check = packed[:-_CHECK_BYTES], packed[-_CHECK_BYTES:]
        fixed = _SERVER_ID_BYTES + 32 + KEY_BYTES
        if len(body) <= fixed or hashlib.sha256(body).digest()[:_CHECK_BYTES] != check:
            raise AuthError("the pairing code is damaged or incomplete: copy it again, whole")
        try:
            name = body[fixed:].decode("utf-8")
        except UnicodeDecodeError:
            raise AuthError("the pairing code is damaged: copy it again, whole") from None
        return PairingCode(
            server_id=body[:_SERVER_ID_BYTES].hex(),
            fingerprint=body[_SERVER_ID_BYTES : _SERVER_ID_BYTES + 32].hex(),
            name=name,
            key=body[_SERVER_ID_BYTES + 32 : fixed],
        )


# -- the client's side ----------------------------------------------------------------


def client_tls_context() -> ssl.SSLContext:
    """TLS 1.3 without certificate authorities: the server's certificate is its own,
    and the client checks it by its fingerprint (pinned, or bound into the proofs)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class ProvenServer:
    server_id: str
    fingerprint: str


class SecureTcpClient(AsyncTcpClient):
    """A Wyoming TCP client that can prove itself, and its server, before anything else."""

    async def authenticate(
        self,
        role: str,
        name: str,
        key: bytes,
        fingerprint: str | None = None,
        server_id: str | None = None,
    ) -> ProvenServer:
        """Start TLS and run the exchange; AuthError unless both ends proved themselves.

        `fingerprint` and `server_id`, when given, are what was pinned: a server with
        another certificate or id is refused before any proof is sent.
        """
        await self.write_event(Event(TLS_TYPE))
        await self._expect(TLS_READY_TYPE)
        assert self._writer is not None, "connect() first"
        await self._writer.start_tls(client_tls_context())
        ssl_object = self._writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise AuthError("the server sent no certificate")
        seen = certificate_fingerprint(der)
        if fingerprint is not None and not proofs_match(fingerprint, seen):
            raise AuthError(
                f"the server's certificate changed (pinned {fingerprint[:16]}…, it shows "
                f"{seen[:16]}…): not the server this was paired with; pair again if the "
                "server was reinstalled"
            )
        hello = AuthHello(role=role, name=name, nonce=new_nonce())
        await self.write_event(hello.event())
        challenge = AuthChallenge.from_event(await self._expect(CHALLENGE_TYPE))
        if server_id is not None and challenge.server_id != server_id:
            raise AuthError(f"the server is {challenge.server_id}, not {server_id}")
        expected = make_proof(key, "server", hello, challenge.nonce, seen)
        if not proofs_match(expected, challenge.proof):
            raise AuthError("the server could not prove that it holds the key")
        proof = make_proof(key, "client", hello, challenge.nonce, seen)
        await self.write_event(AuthProof(proof).event())
        await self._expect(AUTH_DONE_TYPE)
        return ProvenServer(server_id=challenge.server_id, fingerprint=seen)

    async def disconnect(self) -> None:
        """Hang up. What the server was still sending meanwhile is of no interest (TLS's
        closing handshake reports it as an error)."""
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await super().disconnect()

    async def _expect(self, event_type: str) -> Event:
        event = await self.read_event()
        if event is None:
            raise AuthError(f"the server closed the connection before {event_type}")
        if event.type == "error":
            text, code = event.data.get("text"), event.data.get("code")
            raise AuthError(
                f"the server refused: {text}" if text else "the server refused",
                code if isinstance(code, str) else None,
            )
        if event.type != event_type:
            raise AuthError(f"expected {event_type} from the server, got {event.type}")
        return event
