"""The server's own TLS certificate, made at first start and kept in its data directory.

No certificate authority vouches for a server in a home: clients check the certificate
by its SHA-256 fingerprint, pinned at enrolment (satellites) or bound into the proofs of
the challenge-response (Home Assistant; protocol/auth.py). The key is an EC P-256 key
from `cryptography`, written owner-only; the certificate is valid for a century, since
what makes it trusted is its fingerprint, not its dates.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..files import create_private
from ..protocol.auth import certificate_fingerprint

_LOGGER = logging.getLogger(__name__)

TLS_DIR = "tls"
KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
VALID_YEARS = 100


@dataclass(frozen=True)
class ServerCertificate:
    cert_path: Path
    key_path: Path
    fingerprint: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def load_certificate(data_dir: Path, server_id: str) -> ServerCertificate:
    """The certificate kept in `data_dir`, made there (with its key) the first time."""
    folder = data_dir / TLS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    key_path, cert_path = folder / KEY_FILE, folder / CERT_FILE
    if create_private(key_path, _new_key()):
        _LOGGER.info("Created the server's TLS key in %s", key_path)
    elif key_path.stat().st_mode & 0o077:
        _LOGGER.warning("%s is readable by other users: chmod 600 it", key_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC key: move it away to make a new one")
    if create_private(cert_path, _new_certificate(key, server_id)):
        _LOGGER.info("Created the server's TLS certificate in %s", cert_path)
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    return ServerCertificate(cert_path, key_path, certificate_fingerprint(der))


def _new_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_certificate(key: ec.EllipticCurvePrivateKey, server_id: str) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"locara-{server_id}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * VALID_YEARS))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
