"""Enrolling a satellite on a test server as an administrator does: with the command."""

from __future__ import annotations

import asyncio
import sys

from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.protocol.auth import PAIRING_PREFIX, PairingCode


async def satellites_command(server: ServerProcess, *args: str) -> tuple[int, str]:
    """`locara-wyoming satellites ARGS` on `server`'s data directory: (exit code, output)."""
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locara_wyoming", "satellites", *args,
        "--data-dir", str(server.workdir / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await command.communicate()
    assert command.returncode is not None
    return command.returncode, output.decode()


async def enrol(server: ServerProcess, name: str) -> PairingCode:
    """Enrol `name`; the pairing code the command printed."""
    code, output = await satellites_command(server, "add", name)
    assert code == 0, output
    printed = [word for word in output.split() if word.startswith(PAIRING_PREFIX)]
    assert len(printed) == 1, output
    return PairingCode.decode(printed[0])
