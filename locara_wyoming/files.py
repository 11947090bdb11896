"""Files in the data directory written whole or not at all, owner-only where secret."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

_LOGGER = logging.getLogger(__name__)


def _draft(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}")


def _write(draft: Path, data: bytes, mode: int) -> None:
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def create_private(path: Path, data: str | bytes) -> bool:
    """Create an owner-only file holding `data` (text gets a newline), whole or not at
    all: a crash leaves no empty file behind. False when the file already exists."""
    if path.exists():
        return False
    content = (data + "\n").encode() if isinstance(data, str) else data
    draft = _draft(path)
    try:
        _write(draft, content, 0o600)
        os.link(draft, path)  # fails if another process created it meanwhile
    except FileExistsError:
        return False
    finally:
        draft.unlink(missing_ok=True)
    sync_directory(path.parent)
    return True


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data`, whole or not at all. OSError when it cannot be
    written (a full disk, a read-only directory): the old file is kept and no draft is
    left beside it."""
    draft = _draft(path)
    try:
        _write(draft, data, mode)
        os.chmod(draft, mode)  # the umask may have taken bits away
        os.replace(draft, path)
    except OSError:
        with contextlib.suppress(OSError):  # not there, or never ours (not a file)
            draft.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Make a rename in `directory` survive a power cut. The new file is in place once
    renamed, so a failure here is reported, not raised."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        _LOGGER.warning("Could not sync %s after writing in it: %s", directory, error)
