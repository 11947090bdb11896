"""What the server proves itself with, and what it checks others against."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol.auth import ROLE_CONTROL, ROLE_SATELLITE, PairingCode, token_key
from .certificate import ServerCertificate, load_certificate
from .enrolment import SatelliteStore, check_name
from .identity import Identity


@dataclass
class ServerSecurity:
    identity: Identity
    certificate: ServerCertificate
    satellites: SatelliteStore
    tls: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.tls = self.certificate.server_context()

    @staticmethod
    def load(data_dir: Path, identity: Identity) -> ServerSecurity:
        return ServerSecurity(
            identity, load_certificate(data_dir, identity.server_id), SatelliteStore(data_dir)
        )

    def key_for(self, role: str, name: str) -> bytes | None:
        """The key `role` `name` must prove it holds; None: nobody may be that."""
        if role == ROLE_CONTROL:
            return token_key(self.identity.token)
        if role == ROLE_SATELLITE:
            return self.satellites.key_of(name)
        return None

    def enrol(self, name: str) -> PairingCode:
        """Enrol (or re-key) `name`; what its satellite is to be given."""
        name = check_name(name)
        key = self.satellites.add(name)
        return PairingCode(self.identity.server_id, self.certificate.fingerprint, name, key)
