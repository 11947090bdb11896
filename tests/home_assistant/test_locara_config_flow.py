"""The Locara integration's config flows against a real server: zeroconf discovery from
the server's real mDNS record, the flow by hand, reconfigure and reauth, each checked
by really connecting and subscribing with the token."""

from __future__ import annotations

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
from .locara_helpers import discover, server_id_of, token_of


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> None:
    """Home Assistant's core integration, which a real HA always has (conversation needs it)."""
    assert await async_setup_component(hass, "homeassistant", {})


def entry_data(server: LocaraServer, **changes: Any) -> dict[str, Any]:
    return {"host": server.host, "port": server.port, "token": token_of(server), **changes}


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
    assert result["data"] == entry_data(locara_server)
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
    """A server that moved (another port here) is found by its id and the entry follows."""
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
    assert entry.data == entry_data(locara_server)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"


async def test_manual_flow_checks_the_address_and_the_token(
    hass: HomeAssistant, locara_server: LocaraServer
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
    result = await hass.config_entries.flow.async_configure(
        flow_id, entry_data(locara_server, token=token_of(locara_server) + "x")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert any("wrong or missing token" in line for line in locara_server.log[-20:]), (
        "the server saw the wrong token"
    )

    result = await hass.config_entries.flow.async_configure(flow_id, entry_data(locara_server))
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["result"].unique_id == server_id_of(locara_server)
    await hass.async_block_till_done()

    again = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    again = await hass.config_entries.flow.async_configure(
        again["flow_id"], entry_data(locara_server)
    )
    assert again["type"] is FlowResultType.ABORT and again["reason"] == "already_configured"


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
    assert entry.data == entry_data(locara_server)
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
