"""`server.allowed_clients`: Wyoming has no authentication, so the server can keep a
network out. A server of its own that admits only 10.0.0.0/8 and ::1."""

from __future__ import annotations

from pathlib import Path

import pytest

from locara_wyoming.bench.server_process import ServerProcess

from .support.raw_wyoming import expect_closed, expect_error, raw_connection
from .support.servers import serve_expecting_failure

pytestmark = pytest.mark.models


async def test_an_address_outside_the_list_is_refused(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, '[server]\nallowed_clients = ["10.0.0.0/8", "::1"]\n')
    await server.start()
    try:
        async with raw_connection(server) as (reader, _writer):  # from 127.0.0.1
            error = await expect_error(reader, "forbidden")
            assert "allowed_clients" in error.text
            await expect_closed(reader)
        assert any("Refusing ('127.0.0.1'" in line for line in server.log)
    finally:
        await server.stop()


def test_a_bad_entry_is_named_at_start(tmp_path: Path) -> None:
    result = serve_expecting_failure(tmp_path, '[server]\nallowed_clients = ["kitchen"]\n')
    assert result.returncode != 0
    assert "server.allowed_clients" in result.stderr and "'kitchen' is not an IP" in result.stderr
