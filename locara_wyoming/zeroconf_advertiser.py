"""Advertise the server as `_wyoming._tcp.local.` under a stable `locara-…` name.

`wyoming.zeroconf.HomeAssistantZeroconf` registers one address and cannot
withdraw its record; Home Assistant keeps showing a server that has stopped.
This advertiser adds TXT properties our integration matches on (and the server's
stable `id`, the integration's unique id), every address
the server is reachable at, and unregisters on shutdown.
"""

from __future__ import annotations

import logging
import re
import socket

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from . import __version__

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
NAME_PREFIX = "locara"
MDNS_GROUP = "224.0.0.251"


def instance_name(requested: str | None) -> str:
    """`locara-<hostname>` by default; a given name gets the `locara-` prefix if it lacks it."""
    base = requested or socket.gethostname()
    base = re.sub(r"[^A-Za-z0-9-]+", "-", base).strip("-").lower() or "server"
    return base if base.startswith(NAME_PREFIX) else f"{NAME_PREFIX}-{base}"


def advertised_address(bind_host: str) -> str:
    """The address to publish: the bound host, or the LAN address when bound to all."""
    if bind_host not in ("0.0.0.0", "", "::"):
        return socket.gethostbyname(bind_host)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((MDNS_GROUP, 1))  # no packet is sent; this picks the outgoing interface
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


class ZeroconfAdvertiser:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        interfaces: list[str] | None = None,
        server_id: str | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._zeroconf = AsyncZeroconf(
            interfaces=interfaces or "all",
            ip_version=IPVersion.V4Only,
        )
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{name}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(host)],
            port=port,
            properties={
                "server": "locara",
                "version": __version__,
                **({"id": server_id} if server_id else {}),
            },
            server=f"{name}.local.",
        )

    @property
    def record(self) -> str:
        return f"{self.name}.{SERVICE_TYPE}"

    async def start(self) -> None:
        # Both calls return a task that finishes once the packets are out (probe and
        # announce, or the goodbye); awaiting it makes "ready" and "stopped" true.
        await (await self._zeroconf.async_register_service(self._info))
        _LOGGER.info("Zeroconf: advertising %s at %s:%s", self.record, self.host, self.port)

    async def stop(self) -> None:
        await (await self._zeroconf.async_unregister_service(self._info))
        await self._zeroconf.async_close()
        _LOGGER.info("Zeroconf: withdrew %s", self.record)
