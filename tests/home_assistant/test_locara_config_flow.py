"""The Locara integration's config flows against a real server: zeroconf discovery from
the server's real mDNS record, the flow by hand, reconfigure and reauth, each checked
by really connecting, proving both ends with the token and subscribing; and a rogue
server that advertises the real one's id, which gets neither the entry nor a proof."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_USER,
    SOURCE_ZEROCONF,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.locara.const import DOMAIN

from .conftest import LocaraServer, free_port
from .locara_helpers import discover, pin_of, server_id_of, setup_entry, token_of


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> None:
    """Home Assistant's core integration, which a real HA always has (conversation needs it)."""
    assert await async_setup_component(hass, "homeassistant", {})


def entry_data(server: LocaraServer, **changes: Any) -> dict[str, Any]:
    return {"host": server.host, "port": server.port, "token": token_of(server), **changes}


def proven_entry_data(server: LocaraServer) -> dict[str, Any]:
    """An entry's data once `server` proved itself: with its id and certificate pinned."""
    return {**entry_data(server), **pin_of(server)}


async def test_zeroconf_discovery_asks_for_the_token_and_sets_up(
    hass: HomeAssistant, locara_server: LocaraServer
) -> None:
    discovery = await discover(locara_server)
    assert discovery.properties.get("id") == server_id_of(locara_server), discovery.properties

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=discovery
    )
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"]["name"] == locara_server.zeroconf_name

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"token": "not-the-token"}
    )
    assert result["type"] is FlowResultType.FORM and result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"token": token_of(locara_server)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["data"] == proven_entry_data(locara_server)
    assert result["title"] == locara_server.zeroconf_name
    entry = result["result"]
    assert entry.unique_id == server_id_of(locara_server)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"

    # The same server found again is not offered twice.
    again = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=discovery
    )
    assert again["type"] is FlowResultType.ABORT and again["reason"] == "already_configured"


async def test_zeroconf_gives_a_configured_server_its_new_address(
    hass: HomeAssistant, locara_server: LocaraServer
) -> None:
    """A server that moved (another port here) is found by its id, proves itself there
    with the entry's token, and the entry follows."""
    moved_from = free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=server_id_of(locara_server),
        data=entry_data(locara_server, port=moved_from),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY, "nothing listens on the old port"

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=await discover(locara_server)
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "already_configured"
    assert entry.data == proven_entry_data(locara_server)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"


async def test_manual_flow_checks_the_address_and_the_token(
    hass: HomeAssistant, locara_server: LocaraServer, caplog: pytest.LogCaptureFixture
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "user"
    port_field = next(key for key in result["data_schema"].schema if key == "port")
    assert port_field.default() == 10700

    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, entry_data(locara_server, port=free_port())
    )
    assert result["errors"] == {"base": "cannot_connect"}, "no server listens on that port"
    with caplog.at_level(logging.DEBUG, "custom_components.locara"):
        result = await hass.config_entries.flow.async_configure(
            flow_id, entry_data(locara_server, token=token_of(locara_server) + "x")
        )
    assert result["errors"] == {"base": "invalid_auth"}
    # The server proved it holds its token, which is not the one given: Home Assistant
    # stopped there, and sent no proof of its own.
    assert "could not prove that it holds the key" in caplog.text, caplog.text

    result = await hass.config_entries.flow.async_configure(flow_id, entry_data(locara_server))
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["result"].unique_id == server_id_of(locara_server)
    await hass.async_block_till_done()

    again = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    again = await hass.config_entries.flow.async_configure(
        again["flow_id"], entry_data(locara_server)
    )
    assert again["type"] is FlowResultType.ABORT and again["reason"] == "already_configured"


async def test_a_listener_that_hangs_up_during_the_exchange_is_not_a_wrong_token(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """Something that takes the connection and closes it after `locara-tls` (a server
    shutting down, say) gives "cannot connect": a lost connection proves nothing about
    the token, and must not send the user to re-enter it."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # the client's locara-tls
        writer.close()

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"host": "127.0.0.1", "port": port, "token": "any"}
        )
        assert result["errors"] == {"base": "cannot_connect"}, result
    finally:
        listener.close()
        await listener.wait_closed()


async def test_reconfigure_moves_the_entry_to_the_servers_new_address(
    hass: HomeAssistant, locara_server: LocaraServer
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=server_id_of(locara_server),
        data=entry_data(locara_server, port=free_port()),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY

    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(locara_server, token="wrong")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(locara_server)
    )
    assert result["type"] is FlowResultType.ABORT, result
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == proven_entry_data(locara_server)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"


async def test_a_refused_token_asks_for_a_new_one(
    hass: HomeAssistant, locara_server: LocaraServer
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=server_id_of(locara_server),
        data=entry_data(locara_server, token="an-old-token"),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR

    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {"token": "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {"token": token_of(locara_server)}
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "reauth_successful"
    assert entry.data["token"] == token_of(locara_server)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"


async def test_another_server_at_the_entrys_address_is_not_taken_for_it(
    hass: HomeAssistant, locara_server: LocaraServer
) -> None:
    """An entry pinned to another server's id, where this server answers (one that holds
    the same token, say): the connection is refused and Home Assistant asks again; a
    token entered then does not move the entry to this server."""
    other = "f" * 32
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=other,
        data=entry_data(locara_server, server_id=other, fingerprint="0" * 64),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR, f"{entry.state} ({entry.reason})"
    assert entry.reason is not None and f"is {server_id_of(locara_server)}, not {other}" in (
        entry.reason
    )

    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {"token": token_of(locara_server)}
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_server"
    assert entry.data["server_id"] == other


async def test_a_rogue_server_advertising_the_servers_id_is_ignored(
    hass: HomeAssistant,
    locara_server: LocaraServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A second real server on loopback, with its own data directory (so another token and
    certificate) but the real server's id, advertised by zeroconf as the real one is:
    the integration tries it with the entry's token, the rogue cannot prove it holds the
    token, and the entry stays where it is; the rogue gets no proof from Home Assistant,
    and never the token (which never crosses the network)."""
    entry = await setup_entry(hass, locara_server)
    rogue = LocaraServer(tmp_path / "rogue")
    rogue.data_dir.mkdir()
    (rogue.data_dir / "server_id").write_text(server_id_of(locara_server) + "\n")
    await rogue.async_start()
    try:
        assert token_of(rogue) != token_of(locara_server)
        discovery = await discover(rogue)
        assert discovery.properties.get("id") == server_id_of(locara_server)
        assert discovery.port == rogue.port

        with caplog.at_level(logging.WARNING, "custom_components.locara"):
            result = await hass.config_entries.flow.async_init(
                DOMAIN, context={"source": SOURCE_ZEROCONF}, data=discovery
            )
            await hass.async_block_till_done()
        assert result["type"] is FlowResultType.ABORT, result
        assert result["reason"] == "already_configured"
        assert (entry.data["host"], entry.data["port"]) == (locara_server.host, locara_server.port)
        assert entry.data["fingerprint"] == pin_of(locara_server)["fingerprint"]
        assert entry.state is ConfigEntryState.LOADED and entry.runtime_data.client.connected
        messages = [record.getMessage() for record in caplog.records]
        ignored = [message for message in messages if "Ignored a zeroconf" in message]
        assert len(ignored) == 1, caplog.text
        assert f":{rogue.port}" in ignored[0] and "could not prove" in ignored[0], ignored
    finally:
        await rogue.async_stop()
    rogue_log = "\n".join(rogue.log)
    assert "proved itself as control" not in rogue_log, rogue_log
    assert "proof for control" not in rogue_log, rogue_log
    assert token_of(locara_server) not in rogue_log
