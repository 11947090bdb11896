"""The control hub on its own (no server, no models): pushes, a subscriber that falls
behind, and questions to Home Assistant matched to their answers."""

from __future__ import annotations

import asyncio

import pytest
from wyoming.event import Event

from locara_wyoming.control import hub as hub_module
from locara_wyoming.control.hub import MAX_QUEUED_PUSHES, ControlHub
from locara_wyoming.protocol.control import HomeAnswer, HomeRequest, SatelliteRecord


class Inbox:
    """A subscriber's connection: what it was sent, a switch that stops its reading, and
    whether the hub closed it."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.disconnected = False

    async def write(self, event: Event) -> None:
        await self.reading.wait()
        self.events.append(event)

    def disconnect(self) -> None:
        self.disconnected = True


def subscribe(hub: ControlHub, inbox: Inbox) -> None:
    hub.subscribe("inbox", inbox.write, inbox.disconnect)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_pushes_reach_every_subscriber_in_order() -> None:
    hub = ControlHub()
    first, second = Inbox(), Inbox()
    subscribe(hub, first)
    subscribe(hub, second)
    hub.update_satellite(SatelliteRecord(name="kitchen", connected=True))
    hub.update_satellite(SatelliteRecord(name="kitchen", connected=False))
    await settle()
    for inbox in (first, second):
        records = [SatelliteRecord.from_event(event) for event in inbox.events]
        assert [record.connected for record in records] == [True, False]
    assert hub.satellites["kitchen"].connected is False  # the record is kept after it left
    await hub.close()


async def test_a_subscriber_that_falls_behind_is_disconnected_and_others_go_on() -> None:
    hub = ControlHub()
    stuck, reader = Inbox(), Inbox()
    stuck.reading.clear()
    subscribe(hub, stuck)
    subscribe(hub, reader)
    for number in range(MAX_QUEUED_PUSHES + 2):
        hub.update_satellite(SatelliteRecord(name=f"room-{number}"))
        await asyncio.sleep(0)
    await settle()
    assert len(reader.events) == MAX_QUEUED_PUSHES + 2
    assert stuck.disconnected and not reader.disconnected
    hub.update_satellite(SatelliteRecord(name="after"))
    stuck.reading.set()
    await settle()
    assert stuck.events == []  # dropped: what was queued for it is not sent once it reads
    assert SatelliteRecord.from_event(reader.events[-1]).name == "after"
    await hub.close()


async def test_home_questions_get_the_answer_with_their_id() -> None:
    hub = ControlHub()
    assert await hub.ask_home("lights on", "en", "kitchen", "Kitchen", "c1") is None  # nobody
    inbox = Inbox()
    subscribe(hub, inbox)
    asked = asyncio.create_task(hub.ask_home("lights on", "en", "kitchen", "Kitchen", "c1"))
    await settle()
    request = HomeRequest.from_event(inbox.events[-1])
    assert (request.text, request.satellite, request.area) == ("lights on", "kitchen", "Kitchen")
    assert not hub.home_answer(HomeAnswer("another-id", True, "no"))
    assert hub.home_answer(HomeAnswer(request.request_id, True, "Turned on the lights"))
    assert await asked == "Turned on the lights"
    assert not hub.home_answer(HomeAnswer(request.request_id, True, "twice"))  # answered once

    asked = asyncio.create_task(hub.ask_home("sing", "en", "kitchen", None, "c1"))
    await settle()
    request = HomeRequest.from_event(inbox.events[-1])
    hub.home_answer(HomeAnswer(request.request_id, False, "Sorry"))
    assert await asked is None  # not handled: the server's own LLM answers
    await hub.close()


async def test_a_home_question_without_an_answer_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "HOME_ANSWER_TIMEOUT_S", 0.05)
    hub = ControlHub()
    subscribe(hub, Inbox())
    assert await hub.ask_home("lights on", "en", "kitchen", None, "c1") is None
    await hub.close()
