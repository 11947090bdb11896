"""The server's token and id, created at first start and kept in its data directory.

The token guards every change of settings: without it a client can use the voice
programs but change nothing. It is written owner-only and never logged (logs end up in
bug reports and log collectors); `locara-wyoming token` prints it.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

TOKEN_FILE = "token"
SERVER_ID_FILE = "server_id"


@dataclass(frozen=True)
class Identity:
    server_id: str
    token: str

    def accepts(self, token: object) -> bool:
        """Whether `token` is this server's token, compared in constant time."""
        if not isinstance(token, str):
            return False
        # JSON may carry a lone surrogate ("\ud800"), which strict UTF-8 cannot encode:
        # passed through as bytes, it is simply not the token.
        sent = token.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(sent, self.token.encode())


def _create_private(path: Path, text: str) -> bool:
    """Create an owner-only file holding `text`, whole or not at all (a crash leaves no
    empty token behind); False when the file already exists."""
    if path.exists():
        return False
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(draft, path)  # fails if another process created it meanwhile
    except FileExistsError:
        return False
    finally:
        draft.unlink(missing_ok=True)
    return True


def read_token(data_dir: Path) -> str:
    return (data_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()


def load_identity(data_dir: Path) -> Identity:
    """The identity kept in `data_dir`, created there at first start."""
    token_path = data_dir / TOKEN_FILE
    if _create_private(token_path, secrets.token_urlsafe(24)):
        _LOGGER.warning(
            "Created the control token in %s (Home Assistant's Locara integration asks for "
            "it): `locara-wyoming token --data-dir %s` prints it",
            token_path,
            data_dir,
        )
    elif token_path.stat().st_mode & 0o077:
        _LOGGER.warning("%s is readable by other users: chmod 600 it", token_path)
    _create_private(data_dir / SERVER_ID_FILE, uuid.uuid4().hex)
    server_id = (data_dir / SERVER_ID_FILE).read_text(encoding="utf-8").strip()
    return Identity(server_id=server_id, token=read_token(data_dir))
