"""A settings change the server cannot write is refused as a control error: the old
settings stay live and on disk, and no draft is left beside them.

The failure is a real one, made under a running server. Where the tests may mount (they
run as root here), the data directory is a 1 MiB tmpfs and a filler file takes all of
it: the draft is created and its write fails with ENOSPC, so its removal is checked
too. Root ignores a directory's permissions, so elsewhere (not root) the data directory
is made read-only (0o500) and the draft cannot be created at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from locara_wyoming.bench.server_process import ServerProcess

from .support.control_client import ControlClient, control, token_of

pytestmark = pytest.mark.models


class Storage:
    """The server's data directory, which can be made to refuse writes and restored."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.on_tmpfs = False

    def prepare(self) -> None:
        self.directory.mkdir()
        if os.geteuid() != 0:
            return
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(self.directory)],
            capture_output=True,
            text=True,
        )
        if mounted.returncode != 0:
            pytest.skip(f"root, and cannot mount a tmpfs to fill: {mounted.stderr.strip()}")
        self.on_tmpfs = True

    @property
    def filler(self) -> Path:
        return self.directory / "filler"

    def fail(self) -> None:
        if not self.on_tmpfs:
            self.directory.chmod(0o500)
            return
        with contextlib.suppress(OSError), self.filler.open("wb", buffering=0) as file:
            while True:  # until the disk is full (ENOSPC)
                file.write(bytes(4096))

    def restore(self) -> None:
        if self.on_tmpfs:
            self.filler.unlink(missing_ok=True)
        else:
            self.directory.chmod(0o700)

    def release(self) -> None:
        self.restore()
        if self.on_tmpfs:
            subprocess.run(["umount", str(self.directory)], check=True)


@pytest.fixture(scope="module")
async def storage_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[ServerProcess, Storage]]:
    workdir = tmp_path_factory.mktemp("storage")
    storage = Storage(workdir / "data")  # ServerProcess's data directory
    storage.prepare()
    try:
        async with ServerProcess(workdir) as server:
            yield server, storage
    finally:
        storage.release()


@contextlib.asynccontextmanager
async def hub_of(server: ServerProcess) -> AsyncIterator[ControlClient]:
    async with control(server.host, server.port, token_of(server)) as hub:
        yield hub


async def test_a_settings_write_that_fails_keeps_the_old_settings(
    storage_server: tuple[ServerProcess, Storage],
) -> None:
    server, storage = storage_server
    settings_file = storage.directory / "settings.json"
    async with hub_of(server) as hub:
        done = await hub.request("locara-settings", settings={"muted": ["first"]})
        assert done.type == "locara-settings-done", done.data
        await hub.push("locara-settings-changed", lambda d: d["settings"]["muted"] == ["first"])
        saved = settings_file.read_bytes()

        storage.fail()
        try:
            refused = await hub.request("locara-settings", settings={"muted": ["second"]})
            assert refused.type == "error", refused.data
            assert refused.data["code"] == "storage-failed", refused.data
            assert refused.data["request_id"]  # which the client matched to its request
            assert "old settings are kept" in refused.data["text"]
            assert settings_file.read_bytes() == saved
            leftovers = {path.name for path in storage.directory.iterdir()}
            assert leftovers <= {"token", "server_id", "tls", "settings.json", "filler"}, leftovers
        finally:
            storage.restore()
        changes = [event for event in hub.pushes if event.type == "locara-settings-changed"]
        assert [c.data["settings"]["muted"] for c in changes] == [["first"]]

    async with hub_of(server) as hub:  # live: as before the failed change
        assert hub.state["settings"]["muted"] == ["first"]
        done = await hub.request("locara-settings", settings={"muted": []})
        assert done.type == "locara-settings-done", done.data  # writable again: saved
    assert json.loads(settings_file.read_text())["muted"] == []
    assert server.log.matching("Could not save the settings")
    assert not server.log.matching("Traceback")


async def test_a_backend_started_for_settings_that_cannot_be_saved_is_stopped(
    storage_server: tuple[ServerProcess, Storage],
) -> None:
    """A change that names a backend starts it before the settings are saved (so that a
    backend that cannot start refuses the change); when the save then fails, the server
    is left as before the change, without that backend loaded. `voice-pipeline-spare`
    is a pipeline on the server's own stages: it starts without loading a model."""
    server, storage = storage_server
    spare = "voice-pipeline-spare"
    room = {"satellite": "attic", "backend": spare}
    async with hub_of(server) as hub:
        assert spare not in hub.state["server"]["backends"]
        storage.fail()
        try:
            refused = await hub.request("locara-settings", settings={"rooms": [room]})
            assert refused.type == "error", refused.data
            assert refused.data["code"] == "storage-failed", refused.data
        finally:
            storage.restore()

    async with hub_of(server) as hub:
        assert spare not in hub.state["server"]["backends"]  # not loaded
        assert spare not in hub.state["options"]["backends"]  # nor named anywhere
        assert hub.state["settings"]["rooms"] == []
    assert server.log.matching(f"Starting {spare} for the new settings")
    assert server.log.matching(f"Stopped {spare}: the settings that named it were not saved")
    assert not server.log.matching("Traceback")


async def test_text_that_is_not_unicode_is_a_bad_request(
    storage_server: tuple[ServerProcess, Storage],
) -> None:
    """JSON can carry a lone surrogate (the `wyoming` package cannot even send one, so the
    bytes are written here), which no UTF-8 file or model takes: it once failed the
    settings write with a traceback and left its draft behind."""
    server, storage = storage_server
    persona = {"name": "locara", "system_prompt": "You are \ud800 helpful."}
    async with hub_of(server) as hub:
        settings = {"personas": [persona]}
        refused = await hub.request("locara-settings", escaped=True, settings=settings)
    assert refused.type == "error", refused
    assert refused.data["code"] == "bad-request" and refused.data["request_id"], refused.data
    assert "valid Unicode" in refused.data["text"]
    assert not [p for p in storage.directory.iterdir() if p.name.startswith(".settings")]
    assert not server.log.matching("Traceback")
