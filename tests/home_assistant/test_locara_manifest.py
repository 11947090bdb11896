"""Our manifest, as Home Assistant reads it: which zeroconf records it hands to the
Locara integration (decided by Home Assistant's own discovery code from our matcher), and
a requirement that takes the `wyoming` its own Wyoming integration pins."""

from __future__ import annotations

import inspect
import socket
from unittest.mock import MagicMock, patch

from homeassistant.components.zeroconf.discovery import ZeroconfDiscovery
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration, async_get_zeroconf
from packaging.requirements import Requirement
from zeroconf.asyncio import AsyncServiceInfo

from custom_components.locara.const import DOMAIN

SERVICE_TYPE = "_wyoming._tcp.local."


def record(instance: str) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"{instance}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("192.168.1.20")],
        port=10700,
        properties={"server": "locara", "id": "0123abcd"},
        server=f"{instance}.local.",
    )


async def test_zeroconf_matcher_takes_locara_servers_and_no_other_wyoming_service(
    hass: HomeAssistant,
) -> None:
    matchers = await async_get_zeroconf(hass)
    assert {"domain": DOMAIN, "name": "locara*"} in matchers[SERVICE_TYPE], matchers[SERVICE_TYPE]

    # The code that runs when a record arrives, with the matchers HA built from manifests;
    # only the flows it would start are caught. Home Assistant 2025.11 added the host's own
    # record as an argument; the oldest release we support has no such parameter.
    own_record = (
        [MagicMock()]
        if "local_service_info" in inspect.signature(ZeroconfDiscovery).parameters
        else []
    )
    discovery = ZeroconfDiscovery(hass, MagicMock(), matchers, {}, {}, *own_record)
    flows: dict[str, set[str]] = {}
    for instance in ("locara-kitchen", "Locara-Attic", "piper", "faster-whisper", "my-locara"):
        with patch("homeassistant.helpers.discovery_flow.async_create_flow") as create_flow:
            info = record(instance)
            discovery._async_process_service_update(info, SERVICE_TYPE, info.name)
        flows[instance] = {call.args[1] for call in create_flow.call_args_list}

    assert flows == {
        "locara-kitchen": {"wyoming", DOMAIN},
        "Locara-Attic": {"wyoming", DOMAIN},  # mDNS names are matched case-insensitively
        "piper": {"wyoming"},
        "faster-whisper": {"wyoming"},
        "my-locara": {"wyoming"},
    }


async def test_the_wyoming_requirement_takes_what_home_assistant_pins(hass: HomeAssistant) -> None:
    """A pin of our own would make Home Assistant install a second version, or refuse us,
    the day its Wyoming integration moves on."""
    ours = [
        Requirement(text)
        for text in (await async_get_integration(hass, DOMAIN)).requirements
        if Requirement(text).name == "wyoming"
    ]
    theirs = [
        Requirement(text)
        for text in (await async_get_integration(hass, "wyoming")).requirements
        if Requirement(text).name == "wyoming"
    ]
    assert len(ours) == 1 and len(theirs) == 1, (ours, theirs)
    pinned = str(next(iter(theirs[0].specifier)).version)
    assert ours[0].specifier.contains(pinned), f"{ours[0]} refuses {theirs[0]}"
    assert str(ours[0].specifier) != f"=={pinned}", "a range, not a pin"
