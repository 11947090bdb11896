"""Which connections the server takes, so that no one stranger can take them all.

- `limits.max_connections` in all;
- `limits.max_connections_per_address` from one address (every unix-socket peer is one
  address): a stranger at one address cannot fill the server alone;
- connections that have not proved who they are hold at most `max_connections -
  reserved_connections` slots, the unproven share. Beyond it a new connection is still
  taken, on probation: unless it proves itself within `limits.probation_s`, or a slot
  of the share has come free by then, it is closed with `busy`. Strangers who fill the
  server and hold on leave the reserved slots, a few seconds later, to Home Assistant's
  control connection and the enrolled satellites, which prove themselves.

A connection proves itself by authenticating: the authentication calls
`WyomingConnection.mark_proven`, which calls `proven` here. Plain Wyoming clients (Home
Assistant's asr, tts and conversation) never do: they live in the unproven share.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Protocol

from ..config import LimitsConfig
from ..errors import Busy, LocaraError


class Admitted(Protocol):
    def dismiss(self, error: LocaraError) -> None:
        """Tell the peer why, and close the connection."""


def peer_address(peer: object) -> str:
    """What connections are counted by: a TCP peer's IP address; a unix socket's (or
    stdio's) peers are all one."""
    return str(peer[0]) if isinstance(peer, tuple) else "local"


class Admission:
    def __init__(self, limits: LimitsConfig) -> None:
        self._limits = limits
        self._address_of: dict[Admitted, str] = {}
        self._per_address: Counter[str] = Counter()
        self._unproven: set[Admitted] = set()
        """In the unproven share; neither proven nor on probation."""
        self._probation: dict[Admitted, asyncio.TimerHandle] = {}

    @property
    def _unproven_share(self) -> int:
        return self._limits.max_connections - self._limits.reserved_connections

    def refusal(self, address: str) -> str | None:
        """Why a new connection from `address` is refused (`busy`), or None to take it."""
        limits = self._limits
        if len(self._address_of) >= limits.max_connections:
            return f"server is at its limit of {limits.max_connections} connections"
        held = self._per_address[address]
        if held >= limits.max_connections_per_address:
            return (
                f"{address} already holds {held} connections, the most one address may "
                "(limits.max_connections_per_address)"
            )
        return None

    def admit(self, connection: Admitted, address: str) -> None:
        """Count a connection `refusal` let in: in the unproven share, or on probation."""
        self._address_of[connection] = address
        self._per_address[address] += 1
        if len(self._unproven) < self._unproven_share:
            self._unproven.add(connection)
            return
        self._probation[connection] = asyncio.get_running_loop().call_later(
            self._limits.probation_s, self._probation_over, connection
        )

    def proven(self, connection: Admitted) -> None:
        """The connection proved who it is: it holds a slot of its own from now on."""
        self._unproven.discard(connection)
        handle = self._probation.pop(connection, None)
        if handle is not None:
            handle.cancel()

    def release(self, connection: Admitted) -> None:
        """The connection closed: its slot is free."""
        self.proven(connection)  # out of the share and off probation
        address = self._address_of.pop(connection)
        self._per_address[address] -= 1
        if not self._per_address[address]:
            del self._per_address[address]

    def _probation_over(self, connection: Admitted) -> None:
        del self._probation[connection]
        if len(self._unproven) < self._unproven_share:  # a slot came free meanwhile
            self._unproven.add(connection)
            return
        connection.dismiss(
            Busy(
                f"the server's {self._unproven_share} slots for connections that have not "
                f"authenticated are taken, and this one did not authenticate within "
                f"{self._limits.probation_s:g} s"
            )
        )
