"""Home Assistant's built-in Wyoming integration against a real Locara server.

Home Assistant's own `wyoming` integration (not ours) is pointed at a real server with
its embedded models, as a user does by hand or through zeroconf discovery, and its
speech-to-text, text-to-speech and conversation entities are driven the way an Assist
pipeline drives them. Nothing is mocked: speech is real audio from the server's own
voice, transcripts come from its Whisper model and answers from its LLM.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator
from datetime import timedelta

import numpy as np
import pytest
from homeassistant.components import conversation, stt, tts
from homeassistant.config_entries import SOURCE_ZEROCONF, ConfigEntry, ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import Context, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import intent
from homeassistant.loader import async_get_zeroconf
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from .conftest import LocaraServer
from .locara_helpers import discover

WYOMING = "wyoming"
STT_RATE, STT_WIDTH, STT_CHANNELS = 16000, 2, 1  # what HA's Wyoming stt entity sends
REPLY_TIMEOUT_S = 120


def words(text: str | None) -> set[str]:
    return set(re.findall(r"[a-z']+", (text or "").lower()))


async def synthesize_with_server(server: LocaraServer, text: str) -> bytes:
    """Real speech from the server's own tts program, as 16 kHz 16-bit mono PCM."""
    converter = AudioChunkConverter(rate=STT_RATE, width=STT_WIDTH, channels=STT_CHANNELS)
    pcm = bytearray()
    async with (
        AsyncTcpClient(server.host, server.port) as client,
        asyncio.timeout(REPLY_TIMEOUT_S),
    ):
        await client.write_event(Synthesize(text=text).event())
        while True:
            event = await client.read_event()
            assert event is not None, f"the server closed the connection during synthesize {text!r}"
            if AudioChunk.is_type(event.type):
                pcm += converter.convert(AudioChunk.from_event(event)).audio
            elif AudioStop.is_type(event.type):
                break
    return bytes(pcm)


def parse_wav(data: bytes) -> tuple[int, int, int, bytes]:
    """(rate, sample width, channels, PCM) of a WAV file.

    HA's streaming path writes the header before it knows the length (a data size of 0),
    so the PCM is whatever follows the `data` chunk's header.
    """
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", f"not a WAV file: {data[:16]!r}"
    position, fmt = 12, None
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        body = position + 8
        if chunk_id == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (rate, bits // 8, channels)
        elif chunk_id == b"data":
            assert fmt is not None, "WAV data chunk before its fmt chunk"
            end = body + size if 0 < size <= len(data) - body else len(data)
            return (*fmt, data[body:end])
        position = body + size + (size & 1)
    raise AssertionError(f"WAV file without a data chunk ({len(data)} bytes)")


def to_16k_mono(pcm: bytes, rate: int, width: int, channels: int) -> bytes:
    converter = AudioChunkConverter(rate=STT_RATE, width=STT_WIDTH, channels=STT_CHANNELS)
    chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=pcm)
    return converter.convert(chunk).audio


def stt_metadata(language: str = "en") -> stt.SpeechMetadata:
    return stt.SpeechMetadata(
        language=language,
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )


async def pcm_stream(pcm: bytes, chunk_bytes: int = 2048) -> AsyncIterator[bytes]:
    for start in range(0, len(pcm), chunk_bytes):
        yield pcm[start : start + chunk_bytes]


async def transcribe(hass: HomeAssistant, entity_id: str, pcm: bytes) -> stt.SpeechResult:
    """Through HA's stt entity, as an Assist pipeline hands it the microphone's audio."""
    entity = stt.async_get_speech_to_text_entity(hass, entity_id)
    assert entity is not None, f"HA has no speech-to-text entity {entity_id}"
    metadata = stt_metadata()
    assert entity.check_metadata(metadata), (
        f"{entity_id} rejects {metadata} (languages {entity.supported_languages})"
    )
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        return await entity.internal_async_process_audio_stream(metadata, pcm_stream(pcm))


async def converse(
    hass: HomeAssistant, agent_id: str, text: str
) -> conversation.ConversationResult:
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        return await conversation.async_converse(
            hass, text, None, Context(), language="en", agent_id=agent_id
        )


def entity_id_of(hass: HomeAssistant, entry: ConfigEntry, platform: Platform) -> str:
    """The entity HA's Wyoming integration made for `platform` (unique id `<entry>-<platform>`)."""
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, WYOMING, f"{entry.entry_id}-{platform.value}"
    )
    entities = [
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    ]
    assert entity_id is not None, f"no {platform.value} entity for the server; it has {entities}"
    return entity_id


@pytest.fixture
async def ha_core(hass: HomeAssistant, tmp_path_factory: pytest.TempPathFactory) -> None:
    """HA's core integration, which a real HA always has (conversation needs it).

    Home Assistant's files (the tts cache) go to a temporary folder, not into phcc's.
    """
    hass.config.config_dir = str(tmp_path_factory.mktemp("ha-config"))
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
async def wyoming_entry(
    hass: HomeAssistant, ha_core: None, locara_server: LocaraServer
) -> ConfigEntry:
    """HA's Wyoming integration added by hand with the server's host and port."""
    entry = MockConfigEntry(
        domain=WYOMING,
        title="Locara",
        data={"host": locara_server.host, "port": locara_server.port},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, (
        f"HA's Wyoming entry for {locara_server.uri} is {entry.state} ({entry.reason})"
    )
    return entry


async def test_entry_offers_stt_tts_and_conversation(
    hass: HomeAssistant, wyoming_entry: ConfigEntry
) -> None:
    for platform in (Platform.STT, Platform.TTS, Platform.CONVERSATION):
        entity_id = entity_id_of(hass, wyoming_entry, platform)
        state = hass.states.get(entity_id)
        assert state is not None and state.state != "unavailable", f"{entity_id}: {state}"
    agent = conversation.async_get_agent_info(
        hass, entity_id_of(hass, wyoming_entry, Platform.CONVERSATION)
    )
    assert agent is not None, "HA does not list the server's agent among conversation agents"
    assert "en" in conversation.async_get_conversation_languages(hass, agent.id), (
        f"the agent's languages: {conversation.async_get_conversation_languages(hass, agent.id)}"
    )


async def test_speech_to_text_transcribes_real_speech(
    hass: HomeAssistant, wyoming_entry: ConfigEntry, locara_server: LocaraServer
) -> None:
    pcm = await synthesize_with_server(locara_server, "What time is it?")
    assert len(pcm) > STT_RATE * STT_WIDTH // 2, f"the server's voice gave {len(pcm)} bytes"

    result = await transcribe(hass, entity_id_of(hass, wyoming_entry, Platform.STT), pcm)

    assert result.result is stt.SpeechResultState.SUCCESS, (
        f"{result}; log: {locara_server.log[-10:]}"
    )
    assert {"what", "time"} <= words(result.text), f"transcript {result.text!r}"


async def test_text_to_speech_gives_real_wav_speech(
    hass: HomeAssistant, wyoming_entry: ConfigEntry
) -> None:
    message = "Good morning. The weather is sunny today."
    # The Assist pipeline's own request: WAV, so that HA needs no ffmpeg conversion.
    stream = tts.async_create_stream(
        hass,
        entity_id_of(hass, wyoming_entry, Platform.TTS),
        options={tts.ATTR_PREFERRED_FORMAT: "wav"},
    )
    stream.async_set_message(message)
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        data = b"".join([chunk async for chunk in stream.async_stream_result()])

    assert stream.extension == "wav", f"HA made {stream.extension!r} audio"
    rate, width, channels, pcm = parse_wav(data)
    assert width == 2 and channels == 1 and 8000 <= rate <= 48000, (rate, width, channels)
    seconds = len(pcm) / (rate * width * channels)
    assert 0.8 <= seconds <= 8, f"{seconds:.2f} s of audio for {message!r}"
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms > 0.01, f"the audio is near silence (RMS {rms:.4f})"

    # It says the message: HA's own stt entity hears the words back.
    heard = await transcribe(
        hass,
        entity_id_of(hass, wyoming_entry, Platform.STT),
        to_16k_mono(pcm, rate, width, channels),
    )
    assert {"morning", "weather"} <= words(heard.text), f"{message!r} was heard as {heard.text!r}"


async def test_conversation_agent_answers(
    hass: HomeAssistant, wyoming_entry: ConfigEntry, locara_server: LocaraServer
) -> None:
    agent_id = entity_id_of(hass, wyoming_entry, Platform.CONVERSATION)

    result = await converse(hass, agent_id, "What time is it?")

    response = result.response
    assert response.response_type is intent.IntentResponseType.ACTION_DONE, (
        f"{response.as_dict()}; log: {locara_server.log[-10:]}"
    )
    speech = response.speech.get("plain", {}).get("speech", "")
    assert words(speech), f"the agent's answer has no words: {response.as_dict()}"
    assert result.conversation_id, "HA got no conversation id back"


async def test_zeroconf_discovery_sets_up_the_entry(
    hass: HomeAssistant, ha_core: None, locara_server: LocaraServer
) -> None:
    """The server's real mDNS record, browsed on loopback, goes through HA's discovery flow."""
    # What HA's zeroconf component makes of the record, and where its matchers send it.
    discovery = await discover(locara_server)
    assert discovery.port == locara_server.port
    matchers = await async_get_zeroconf(hass)
    assert any(m["domain"] == WYOMING for m in matchers.get(discovery.type, [])), (
        f"HA's zeroconf matchers for {discovery.type}: {matchers.get(discovery.type)}"
    )

    result = await hass.config_entries.flow.async_init(
        WYOMING, context={"source": SOURCE_ZEROCONF}, data=discovery
    )
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == "zeroconf_confirm", result
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["data"] == {"host": str(discovery.ip_address), "port": locara_server.port}
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED, f"{entry.state} ({entry.reason})"
    assert entity_id_of(hass, entry, Platform.CONVERSATION)


async def test_server_down_is_an_error_and_recovery_needs_no_reload(
    hass: HomeAssistant, wyoming_entry: ConfigEntry, locara_server: LocaraServer
) -> None:
    agent_id = entity_id_of(hass, wyoming_entry, Platform.CONVERSATION)
    await locara_server.async_stop()

    result = await converse(hass, agent_id, "Are you there?")
    assert result.response.response_type is intent.IntentResponseType.ERROR, (
        result.response.as_dict()
    )
    assert result.response.error_code is intent.IntentResponseErrorCode.UNKNOWN

    await locara_server.async_start()
    result = await converse(hass, agent_id, "Are you there?")
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE, (
        f"after the server came back: {result.response.as_dict()}"
    )
    assert wyoming_entry.state is ConfigEntryState.LOADED


async def test_entry_waits_for_a_server_that_is_down_at_start(
    hass: HomeAssistant, ha_core: None, locara_server: LocaraServer
) -> None:
    await locara_server.async_stop()
    entry = MockConfigEntry(
        domain=WYOMING, data={"host": locara_server.host, "port": locara_server.port}
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY, f"{entry.state} ({entry.reason})"

    # HA's own retry picks the server up once it is back.
    await locara_server.async_start()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
    async with asyncio.timeout(60):
        while entry.state is not ConfigEntryState.LOADED:
            await hass.async_block_till_done()
            await asyncio.sleep(0.2)
    assert entity_id_of(hass, entry, Platform.STT)
