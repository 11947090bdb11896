"""Which connections the server takes, on its own (no server, no sockets): what the
authentication's `mark_proven` will change, which no real client can do yet.
tests/test_connection_limits.py checks the rest on a real server."""

from __future__ import annotations

import asyncio

from locara_wyoming.config import LimitsConfig
from locara_wyoming.connection.admission import Admission, peer_address
from locara_wyoming.errors import LocaraError

PROBATION_S = 0.05
LIMITS = LimitsConfig(
    max_connections=5,
    max_connections_per_address=4,
    reserved_connections=2,
    probation_s=PROBATION_S,
)


class Connection:
    """A connection as admission sees it: what it was closed with, if it was."""

    def __init__(self) -> None:
        self.dismissed: LocaraError | None = None

    def dismiss(self, error: LocaraError) -> None:
        self.dismissed = error


def admitted(admission: Admission, address: str) -> Connection:
    assert admission.refusal(address) is None
    connection = Connection()
    admission.admit(connection, address)
    return connection


async def after_probation() -> None:
    await asyncio.sleep(PROBATION_S * 3)


async def test_strangers_who_fill_the_server_leave_the_reserve_to_the_proven() -> None:
    admission = Admission(LIMITS)
    strangers = [admitted(admission, f"10.0.0.{n}") for n in range(1, 4)]  # the share: 3
    on_probation = [admitted(admission, "10.0.0.4"), admitted(admission, "10.0.0.5")]
    assert admission.refusal("10.0.0.6") == "server is at its limit of 5 connections"
    admission.proven(on_probation[1])  # Home Assistant authenticated in time
    await after_probation()
    assert on_probation[0].dismissed is not None and on_probation[0].dismissed.code == "busy"
    assert "did not authenticate within 0.05 s" in on_probation[0].dismissed.text
    assert on_probation[1].dismissed is None
    assert all(stranger.dismissed is None for stranger in strangers)

    admission.release(on_probation[0])  # as its connection closes
    late = admitted(admission, "10.0.0.7")  # the share is still full: on probation
    admission.release(strangers[0])  # a slot of the share comes free meanwhile
    await after_probation()
    assert late.dismissed is None  # it took that slot


async def test_a_proven_connection_leaves_its_slot_in_the_share_free() -> None:
    admission = Admission(LIMITS)
    first, *_ = [admitted(admission, "10.0.0.1") for _ in range(3)]
    admission.proven(first)
    newcomer = admitted(admission, "10.0.0.2")  # in the share, not on probation
    await after_probation()
    assert newcomer.dismissed is None


async def test_one_address_holds_at_most_its_limit() -> None:
    admission = Admission(LIMITS)
    held = [admitted(admission, "10.0.0.1") for _ in range(4)]
    refusal = admission.refusal("10.0.0.1")
    assert refusal is not None and "10.0.0.1 already holds 4 connections" in refusal
    assert admission.refusal("10.0.0.2") is None
    admission.release(held[0])
    assert admission.refusal("10.0.0.1") is None


def test_unix_socket_peers_are_one_address() -> None:
    assert peer_address(("192.168.1.5", 40000)) == "192.168.1.5"
    assert peer_address(("::1", 40000, 0, 0)) == "::1"
    assert peer_address("") == peer_address(None) == "local"
