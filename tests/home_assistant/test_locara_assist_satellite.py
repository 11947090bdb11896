"""Each Locara satellite as Home Assistant's Assist satellite, against a real server and
real satellites: `assist_satellite.announce` with a message (the chime first, in that
room only) and with media files, `start_conversation` (the room listens without its
wake word), `ask_question` (the room's spoken answer, matched by Home Assistant's own
matching, or the words alone), and the entity's state following the room's."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import homeassistant.components.assist_satellite as assist_satellite_component
import numpy as np
import pytest
from aiohttp import web
from homeassistant.components.assist_satellite import AssistSatelliteEntityFeature
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import ATTR_SUPPORTED_FEATURES
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from wyoming.audio import AudioChunk, AudioStop
from wyoming.event import Event as WyomingEvent

from custom_components.locara.const import DOMAIN

from .conftest import HOST, LocaraServer
from .locara_helpers import (
    Satellite,
    enrolled_satellite,
    entity_id,
    server_id_of,
    setup_entry,
    state_of,
    synthesize,
    wait_until,
    words,
)

CHIME_HZ = 659.25  # the chime's first tone (scripts/make_chime.py)
MEDIA_HZ = 440.0
HA_CHIME = Path(assist_satellite_component.__file__).parent / "preannounce.mp3"


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
def media_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Home Assistant's local media folder (`media-source://media_source/local/…`),
    holding a one-second 440 Hz tone as a WAV file."""
    hass.config.media_dirs = {"local": str(tmp_path)}
    samples = (0.5 * np.sin(2 * np.pi * MEDIA_HZ * np.arange(16_000) / 16_000) * 32767).astype(
        "<i2"
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(samples.tobytes())
    (tmp_path / "tone.wav").write_bytes(out.getvalue())
    return tmp_path


@pytest.fixture
async def entry(hass: HomeAssistant, locara_server: LocaraServer, media_dir: Path) -> ConfigEntry:
    return await setup_entry(hass, locara_server)


@pytest.fixture
async def web_server() -> AsyncIterator[str]:
    """A real web server on 127.0.0.1 with an MP3 file (Home Assistant's own chime): the
    address of the folder it serves."""

    async def chime(_: web.Request) -> web.FileResponse:
        return web.FileResponse(HA_CHIME)

    app = web.Application()
    app.router.add_get("/preannounce.mp3", chime)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://{HOST}:{port}"
    finally:
        await runner.cleanup()


async def satellite_entity(hass: HomeAssistant, server: LocaraServer, room: Satellite) -> str:
    unique_id = f"{server_id_of(server)}:{room.name}-assist_satellite"
    await wait_until(
        lambda: (
            er.async_get(hass).async_get_entity_id("assist_satellite", DOMAIN, unique_id)
            is not None
        ),
        f"{room.name}'s Assist satellite",
    )
    entity = entity_id(hass, "assist_satellite", unique_id)
    await wait_until(lambda: state_of(hass, entity) == "listening", f"{entity} listening")
    return entity


def reply_audio(room: Satellite, after: int) -> tuple[np.ndarray, int]:
    """The samples of the first reply's audio after `after`, and their rate."""
    chunks: list[bytes] = []
    rate = 0
    for event in room.events[after:]:
        if AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            chunks.append(chunk.audio)
            rate = chunk.rate
        elif AudioStop.is_type(event.type) and chunks:
            break
    assert chunks, f"{room.name} got no audio: {[e.type for e in room.events[after:]]}"
    return np.frombuffer(b"".join(chunks), "<i2").astype(np.float64), rate


def tone_share(samples: np.ndarray, rate: int, hz: float) -> float:
    """How much of the samples' energy lies within 25 Hz of `hz`: near 1 for a pure tone."""
    power = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(power[np.abs(frequencies - hz) < 25].sum() / power.sum())


async def announced(room: Satellite, after: int) -> WyomingEvent:
    handled = await room.wait_for("handled", after=after)
    await room.wait_for("audio-stop", after=after)
    return handled


async def test_each_satellite_is_an_assist_satellite_whose_state_is_the_rooms(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    sid = server_id_of(locara_server)
    async with enrolled_satellite(hass, locara_server, "den", area="Den") as den:
        entity = await satellite_entity(hass, locara_server, den)
        registered = er.async_get(hass).async_get(entity)
        device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{sid}:den")})
        assert registered is not None and device is not None
        assert registered.device_id == device.id, "on the satellite's device"
        state = hass.states.get(entity)
        assert state is not None
        assert state.attributes[ATTR_SUPPORTED_FEATURES] == (
            AssistSatelliteEntityFeature.ANNOUNCE | AssistSatelliteEntityFeature.START_CONVERSATION
        )

        states: list[str] = []

        @callback
        def track(event: Event[EventStateChangedData]) -> None:
            if (new_state := event.data["new_state"]) is not None:
                states.append(new_state.state)

        stop_tracking = async_track_state_change_event(hass, entity, track)
        # The satellite says what it is doing, as the real one does between turns.
        await den._client.write_event(WyomingEvent("locara-state", {"state": "idle"}))
        await wait_until(lambda: state_of(hass, entity) == "idle", "idle")
        mark = den.mark()
        await hass.services.async_call(
            "assist_satellite",
            "announce",
            {"entity_id": entity, "message": "Dinner is ready."},
            blocking=True,
        )
        await announced(den, mark)
        await wait_until(lambda: states[-1:] == ["listening"], f"listening again: {states}")
        assert "responding" in states, states
        stop_tracking()
    await wait_until(lambda: state_of(hass, entity) == "unavailable", "unavailable once gone")


async def test_announce_speaks_in_that_room_only_after_the_chime(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    async with (
        enrolled_satellite(hass, locara_server, "den", area="Den") as den,
        enrolled_satellite(hass, locara_server, "hall", area="Hall") as hall,
    ):
        entity = await satellite_entity(hass, locara_server, den)
        await satellite_entity(hass, locara_server, hall)
        mark, hall_mark = den.mark(), hall.mark()
        await hass.services.async_call(
            "assist_satellite",
            "announce",
            {"entity_id": entity, "message": "Dinner is ready."},
            blocking=True,
        )
        handled = await announced(den, mark)
        assert handled.data["text"] == "Dinner is ready."
        audio, rate = reply_audio(den, mark)
        assert tone_share(audio[: int(0.15 * rate)], rate, CHIME_HZ) > 0.8, "the chime first"
        assert len(audio) / rate > 0.4 + 0.5, "then the words"
        with_chime = len(audio) / rate

        mark = den.mark()
        await hass.services.async_call(
            "assist_satellite",
            "announce",
            {"entity_id": entity, "message": "Dinner is ready.", "preannounce": False},
            blocking=True,
        )
        await announced(den, mark)
        audio, rate = reply_audio(den, mark)
        assert tone_share(audio[: int(0.15 * rate)], rate, CHIME_HZ) < 0.5, "no chime"
        assert len(audio) / rate < with_chime - 0.2

        await asyncio.sleep(0.5)
        assert not [e for e in hall.events[hall_mark:] if e.type == "handled"], "hall heard none"


async def test_announce_plays_media_from_home_assistant_and_from_a_url(
    hass: HomeAssistant,
    locara_server: LocaraServer,
    entry: ConfigEntry,
    web_server: str,
) -> None:
    async with enrolled_satellite(hass, locara_server, "den", area="Den") as den:
        entity = await satellite_entity(hass, locara_server, den)

        # A WAV file in Home Assistant's media folder, after the chime; the message shown.
        mark = den.mark()
        await hass.services.async_call(
            "assist_satellite",
            "announce",
            {
                "entity_id": entity,
                "message": "The washing is done.",
                "media_id": "media-source://media_source/local/tone.wav",
            },
            blocking=True,
        )
        handled = await announced(den, mark)
        assert handled.data["text"] == "The washing is done."
        audio, rate = reply_audio(den, mark)
        assert abs(len(audio) / rate - 1.4) < 0.1, f"the chime and the file: {len(audio) / rate}"
        assert tone_share(audio[: int(0.15 * rate)], rate, CHIME_HZ) > 0.8
        assert tone_share(audio[int(0.45 * rate) :], rate, MEDIA_HZ) > 0.8

        # An MP3 file from a web server, with another chime: that file, twice.
        mark = den.mark()
        url = f"{web_server}/preannounce.mp3"
        await hass.services.async_call(
            "assist_satellite",
            "announce",
            {"entity_id": entity, "media_id": url, "preannounce_media_id": url},
            blocking=True,
        )
        await announced(den, mark)
        audio, rate = reply_audio(den, mark)
        half = len(audio) // 2
        assert len(audio) / rate > 0.5
        assert np.corrcoef(audio[: half - 200], audio[half : 2 * half - 200])[0, 1] > 0.9

        # What cannot be fetched is an error that names it; nothing is played.
        mark = den.mark()
        with pytest.raises(HomeAssistantError, match="Cannot get the audio file"):
            await hass.services.async_call(
                "assist_satellite",
                "announce",
                {"entity_id": entity, "media_id": f"{web_server}/missing.mp3"},
                blocking=True,
            )
        await asyncio.sleep(0.3)
        assert not [e for e in den.events[mark:] if e.type == "handled"]


async def test_start_conversation_opens_the_room_without_its_wake_word(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    async with enrolled_satellite(hass, locara_server, "den", area="Den") as den:
        entity = await satellite_entity(hass, locara_server, den)
        mark = den.mark()
        await hass.services.async_call(
            "assist_satellite",
            "start_conversation",
            {"entity_id": entity, "start_message": "Shall I order more coffee?"},
            blocking=True,
        )
        handled = await announced(den, mark)
        assert handled.data["text"] == "Shall I order more coffee?"
        listen = await den.wait_for("locara-listen", after=mark)
        assert den.events.index(listen) > den.events.index(handled), "after the question"


async def test_announcements_return_once_the_room_has_played_them(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    """Automations go on once it has been heard ("announce, then unlock the door"), and
    the room listens only once it is over, else it would hear itself."""
    async with enrolled_satellite(hass, locara_server, "den", area="Den") as den:
        entity = await satellite_entity(hass, locara_server, den)
        den.played_delay_s = 1.5  # a reply plays that long after its last audio came
        mark = den.mark()
        await hass.services.async_call(
            "assist_satellite",
            "announce",
            {"entity_id": entity, "message": "Dinner is ready.", "preannounce": False},
            blocking=True,
        )
        handled = await announced(den, mark)
        assert handled.data["context"]["reply_id"] in den.reported, "returned before it played"

        mark = den.mark()
        await hass.services.async_call(
            "assist_satellite",
            "start_conversation",
            {
                "entity_id": entity,
                "start_message": "Shall I turn on the heating?",
                "extra_system_prompt": "The house is at 15 degrees.",
                "preannounce": False,
            },
            blocking=True,
        )
        handled = await announced(den, mark)
        reported = den.reported[handled.data["context"]["reply_id"]]
        listen = await den.wait_for("locara-listen", after=mark)
        assert den.events.index(listen) >= reported, "listening before the question was over"

        # An extra system prompt over the server's limit is refused; nothing is played.
        mark = den.mark()
        with pytest.raises(ServiceValidationError, match="over 4000 characters"):
            await hass.services.async_call(
                "assist_satellite",
                "start_conversation",
                {"entity_id": entity, "start_message": "Hi", "extra_system_prompt": "x" * 4001},
                blocking=True,
            )
        await asyncio.sleep(0.3)
        assert not [e for e in den.events[mark:] if e.type == "handled"]


async def ask(hass: HomeAssistant, entity: str, room: Satellite, speech: bytes, **data: Any) -> Any:
    """Ask `room` a question through Home Assistant and say `speech` once it has been
    asked; Home Assistant's answer."""
    mark = room.mark()
    asking = asyncio.create_task(
        hass.services.async_call(
            "assist_satellite",
            "ask_question",
            {"entity_id": entity, "question": "Which colour shall the lights be?", **data},
            blocking=True,
            return_response=True,
        )
    )
    await room.wait_for("locara-listen", after=mark)
    await room.say(speech)
    async with asyncio.timeout(60):
        return await asyncio.shield(asking)


async def test_ask_question_returns_the_rooms_answer_matched_as_home_assistant_does(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    speech = await synthesize(locara_server, "Make them blue please.")
    answers = [
        {"id": "colour", "sentences": ["[make them] {colour} [please]"]},
        {"id": "off", "sentences": ["turn them off", "no lights"]},
    ]
    async with enrolled_satellite(hass, locara_server, "den", area="Den") as den:
        entity = await satellite_entity(hass, locara_server, den)

        # Piper speaks a little differently each time and Whisper tiny may mishear it:
        # asked again, at most twice more, until the words were heard right.
        for _ in range(3):
            mark = den.mark()
            answer = await ask(hass, entity, den, speech, answers=answers)
            heard = (await den.wait_for("transcript", after=mark)).data["text"]
            assert answer["sentence"] == heard, answer
            if words(heard) >= {"make", "them", "blue"}:
                break
        else:
            raise AssertionError(f"the server's speech-to-text heard {heard!r}")
        assert answer["id"] == "colour", answer
        assert words(answer["slots"]["colour"]) >= {"blue"}, answer
        # The words answered Home Assistant's question: the room's persona did not.
        await asyncio.sleep(3)
        later = [e.type for e in den.events[mark:]]
        assert later.count("handled") == 1, f"only the question was spoken: {later}"

        # Without answers, the words as heard.
        mark = den.mark()
        answer = await ask(hass, entity, den, speech)
        heard = (await den.wait_for("transcript", after=mark)).data["text"]
        assert answer == {"id": None, "sentence": heard, "slots": {}}
        assert "blue" in words(heard), heard


async def test_a_question_nobody_answers_is_an_error_that_says_so(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    async with enrolled_satellite(hass, locara_server, "den", area="Den") as den:
        entity = await satellite_entity(hass, locara_server, den)
        mark = den.mark()
        with pytest.raises(HomeAssistantError, match="den gave no answer: den said nothing"):
            await hass.services.async_call(
                "assist_satellite",
                "ask_question",
                {"entity_id": entity, "question": "Anyone there?", "preannounce": False},
                blocking=True,
                return_response=True,
            )
        assert await den.wait_for("locara-listen", after=mark)
        # The room is as it was: an announcement reaches it.
        mark = den.mark()
        await hass.services.async_call(
            "assist_satellite",
            "announce",
            {"entity_id": entity, "message": "Hello."},
            blocking=True,
        )
        assert (await announced(den, mark)).data["text"] == "Hello."
