"""The satellite's pairing with its server: `credential.json` in its data directory.

`locara-satellite --pair CODE` keeps what the pairing code holds (`locara-wyoming
satellites add NAME` prints it on the server): the server's id and the fingerprint of
its certificate, which the satellite pins, and the satellite's own name and key. The
file is owner-only and written whole or not at all; the key leaves it only as proofs
(locara_wyoming/protocol/auth.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from locara_wyoming.files import replace_file
from locara_wyoming.protocol.auth import AuthError, PairingCode

from .config import SatelliteConfig

CREDENTIAL_FILE = "credential.json"


class CredentialError(ValueError):
    """A pairing code or credential that cannot be used; the text says why and what to do."""


def decode_pairing_code(text: str) -> PairingCode:
    try:
        return PairingCode.decode(text)
    except AuthError as error:
        raise CredentialError(str(error)) from None


def store_credential(data_dir: Path, code: PairingCode) -> Path:
    """Keep `code` in `data_dir` (made owner-only if new), replacing an older pairing."""
    path = data_dir / CREDENTIAL_FILE
    kept = {
        "server_id": code.server_id,
        "fingerprint": code.fingerprint,
        "name": code.name,
        "key": code.key.hex(),
    }
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        replace_file(path, (json.dumps(kept, indent=2) + "\n").encode(), 0o600)
    except OSError as error:
        raise CredentialError(f"cannot keep the pairing in {path}: {error.strerror}") from None
    return path


def load_credential(data_dir: Path) -> PairingCode | None:
    """The pairing kept in `data_dir`; None when the satellite was never paired."""
    path = data_dir / CREDENTIAL_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CredentialError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(raw)
        kept = PairingCode(
            server_id=data["server_id"],
            fingerprint=data["fingerprint"],
            name=data["name"],
            key=bytes.fromhex(data["key"]),
        )
        # Through a pairing code and back: its own checks of every field's size and text.
        if PairingCode.decode(kept.encode()) == kept:
            return kept
    except (ValueError, KeyError, TypeError, AttributeError, AuthError):
        pass
    raise CredentialError(f"{path} is damaged: pair again (`locara-satellite --pair CODE`)")


def named_by(credential: PairingCode, config: SatelliteConfig) -> SatelliteConfig:
    """`config` with the name the satellite was enrolled under; CredentialError when its
    settings give it another one (the server would refuse that name)."""
    if "name" in config.model_fields_set and config.name != credential.name:
        raise CredentialError(
            f"the pairing is for a satellite named {credential.name!r}, but this one's "
            f"settings name it {config.name!r}: the name comes from the pairing, so leave "
            f"`name` (and --name) out, or enrol it as {config.name!r} on the server and pair "
            "it with that code"
        )
    return config.model_copy(update={"name": credential.name})
