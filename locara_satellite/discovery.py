"""Find a Locara server on the LAN by zeroconf (`_wyoming._tcp.local.`, TXT `server=locara`).

Other Wyoming services (a wyoming-piper, another satellite) answer the same
browse; only Locara servers are taken. A paired satellite takes only the server whose
TXT `id` is the one it was paired with (which must then still prove itself: anyone can
advertise an id). With several, `server_name` picks the one whose instance name
contains it; otherwise the first found.
"""

from __future__ import annotations

import asyncio
import logging

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from locara_wyoming.zeroconf_advertiser import SERVICE_TYPE

_LOGGER = logging.getLogger(__name__)


class ServerFinder:
    def __init__(
        self,
        server_name: str | None = None,
        interfaces: list[str] | None = None,
        server_id: str | None = None,
    ) -> None:
        self.server_name = server_name
        self.interfaces = interfaces
        self.server_id = server_id
        """A paired satellite's server: any other is passed over."""
        self._names: asyncio.Queue[str] = asyncio.Queue()

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is not ServiceStateChange.Removed:
            self._names.put_nowait(name)

    async def find(self) -> str:
        """Browse until a matching Locara server answers; its `tcp://HOST:PORT`."""
        zeroconf = AsyncZeroconf(interfaces=self.interfaces or "all", ip_version=IPVersion.V4Only)
        browser = AsyncServiceBrowser(zeroconf.zeroconf, SERVICE_TYPE, handlers=[self._on_change])
        wanted = f" named like {self.server_name!r}" if self.server_name else ""
        wanted += f" with id {self.server_id}" if self.server_id else ""
        _LOGGER.info("Looking for a Locara server%s on the network", wanted)
        try:
            while True:
                name = await self._names.get()
                uri = await self._locara_uri(zeroconf, name)
                if uri is not None:
                    _LOGGER.info("Found %s at %s", _instance(name), uri)
                    return uri
        finally:
            await browser.async_cancel()
            await zeroconf.async_close()

    async def _locara_uri(self, zeroconf: AsyncZeroconf, name: str) -> str | None:
        if self.server_name and self.server_name.lower() not in name.lower():
            return None
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(zeroconf.zeroconf, 3000):
            return None
        if info.properties.get(b"server") != b"locara":
            return None
        if self.server_id is not None and info.properties.get(b"id") != self.server_id.encode():
            _LOGGER.info("Passing over %s: not the server this satellite is paired with",
                         _instance(name))  # fmt: skip
            return None
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if not addresses or info.port is None:
            return None
        return f"tcp://{addresses[0]}:{info.port}"


def _instance(name: str) -> str:
    return name.removesuffix(f".{SERVICE_TYPE}")
