"""The server's token and id, created at first start and kept in its data directory.

The token is the key Home Assistant's integration proves itself with (protocol/auth.py):
without it a client can use the voice programs but change nothing. It never crosses the
network, is written owner-only and is never logged (logs end up in bug reports and log
collectors); `locara-wyoming token` prints it.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..files import create_private

_LOGGER = logging.getLogger(__name__)

TOKEN_FILE = "token"
SERVER_ID_FILE = "server_id"


@dataclass(frozen=True)
class Identity:
    server_id: str
    token: str


def read_token(data_dir: Path) -> str:
    return (data_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()


def load_identity(data_dir: Path) -> Identity:
    """The identity kept in `data_dir`, created there at first start."""
    token_path = data_dir / TOKEN_FILE
    if create_private(token_path, secrets.token_urlsafe(24)):
        _LOGGER.warning(
            "Created the control token in %s (Home Assistant's Locara integration asks for "
            "it): `locara-wyoming token --data-dir %s` prints it",
            token_path,
            data_dir,
        )
    elif token_path.stat().st_mode & 0o077:
        _LOGGER.warning("%s is readable by other users: chmod 600 it", token_path)
    create_private(data_dir / SERVER_ID_FILE, uuid.uuid4().hex)
    server_id = (data_dir / SERVER_ID_FILE).read_text(encoding="utf-8").strip()
    return Identity(server_id=server_id, token=read_token(data_dir))
