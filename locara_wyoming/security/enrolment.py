"""The enrolled satellites and their keys, in `<data_dir>/satellites.json` (owner-only).

`locara-wyoming satellites add|list|remove` and the control channel (Home Assistant)
change the file; the server reads it again whenever it changed, so a satellite removed
from the command line loses its session within a second (`EnrolmentWatch`). Each change
is made under an exclusive lock on the file's lock file and replaces it whole, so two
writers never lose each other's change.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..files import replace_file
from ..protocol.auth import KEY_BYTES

_LOGGER = logging.getLogger(__name__)

SATELLITES_FILE = "satellites.json"
MAX_NAME_CHARS = 64
WATCH_EVERY_S = 0.5


class EnrolmentError(ValueError):
    """A name that cannot be enrolled, or a damaged file; the text says which."""


@dataclass(frozen=True)
class Enrolled:
    name: str
    key: bytes
    added: str
    """When (ISO 8601, UTC)."""


def check_name(name: str) -> str:
    """`name` as a satellite name, or EnrolmentError saying why it cannot be one."""
    name = name.strip()
    if not name:
        raise EnrolmentError("a satellite's name must not be blank")
    if len(name) > MAX_NAME_CHARS:
        raise EnrolmentError(f"a satellite's name has at most {MAX_NAME_CHARS} characters")
    if not name.isprintable():
        raise EnrolmentError(f"{name!r}: a satellite's name must be printable")
    return name


class SatelliteStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / SATELLITES_FILE
        self._lock_path = data_dir / f".{SATELLITES_FILE}.lock"
        self._seen: tuple[int, int] | None = None
        self._cached: dict[str, Enrolled] = {}

    # -- reading ----------------------------------------------------------------------

    def satellites(self) -> dict[str, Enrolled]:
        """Every enrolled satellite by name, as the file says now."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._cached = None, {}
            return {}
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            if stat.st_mode & 0o077:
                _LOGGER.warning("%s is readable by other users: chmod 600 it", self.path)
            self._cached = self._parse(self.path.read_bytes())
            self._seen = (stat.st_mtime_ns, stat.st_size)
        return self._cached

    def key_of(self, name: str) -> bytes | None:
        enrolled = self.satellites().get(name)
        return enrolled.key if enrolled is not None else None

    def __contains__(self, name: object) -> bool:
        return name in self.satellites()

    def __iter__(self) -> Iterator[Enrolled]:
        return iter(sorted(self.satellites().values(), key=lambda e: e.name))

    def _parse(self, raw: bytes) -> dict[str, Enrolled]:
        try:
            data = json.loads(raw)
            return {
                name: Enrolled(name, bytes.fromhex(entry["key"]), str(entry.get("added", "")))
                for name, entry in data["satellites"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise EnrolmentError(
                f"{self.path} is damaged ({error}): restore or remove it"
            ) from None

    # -- changing ---------------------------------------------------------------------

    def add(self, name: str) -> bytes:
        """Enrol `name` with a new key (a satellite enrolled again gets a new one, and the
        old one stops working); the key."""
        name = check_name(name)
        key = secrets.token_bytes(KEY_BYTES)
        added = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        with self._locked() as satellites:
            satellites[name] = Enrolled(name, key, added)
        return key

    def remove(self, name: str) -> bool:
        """Forget `name`; False when it was not enrolled."""
        with self._locked() as satellites:
            return satellites.pop(name.strip(), None) is not None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Enrolled]]:
        """The satellites to change, read and written back under the lock."""
        descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            self._seen = None
            satellites = dict(self.satellites())
            yield satellites
            data = {
                "satellites": {
                    e.name: {"key": e.key.hex(), "added": e.added} for e in satellites.values()
                }
            }
            replace_file(self.path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)
        finally:
            os.close(descriptor)  # releases the lock


class EnrolmentWatch:
    """Calls `removed(name)` for each satellite that leaves the file, within
    WATCH_EVERY_S of the change (made by this process or another)."""

    def __init__(self, store: SatelliteStore, removed: Callable[[str], Awaitable[object]]) -> None:
        self._store = store
        self._removed = removed

    async def run(self) -> None:
        known = self._names()
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            now = self._names()
            for name in sorted(known - now):
                _LOGGER.info("Satellite %s is no longer enrolled", name)
                await self._removed(name)
            known = now

    def _names(self) -> set[str]:
        try:
            return set(self._store.satellites())
        except (OSError, EnrolmentError) as error:
            _LOGGER.error("Cannot read the enrolled satellites: %s", error)
            return set()
