"""Benchmark: the end of the user's words to the first text-to-speech audio through a real
Home Assistant Assist pipeline, with Home Assistant's built-in Wyoming conversation agent
and with the Locara integration's streaming agent, in one run.

Not part of the test suite (its name does not start with `test_`); run it by naming it
(docs/benchmarks.md, "Home Assistant pipeline"):

    PYTHONPATH=$PWD .venv-ha/bin/python -m pytest -c tests/home_assistant/pytest.ini \\
        tests/home_assistant/bench_ha_pipeline.py -s -p no:logging

`LOCARA_HA_BENCH_TURNS` sets the turns per agent (default 10); `LOCARA_HA_BENCH_JSON` a
file for the raw numbers. It runs Home Assistant's own core in phcc's harness (as the
tests do) against a real server: both pipelines use HA's built-in Wyoming stt and tts
entities on the server, streaming TTS, HA's own voice activity detection, and differ
only in their conversation agent. The utterances are the server's own voice, fed to
`assist_pipeline` in real time like a satellite's microphone, followed by silence until
HA's detection ends the speech. The clock starts when the last voiced chunk has been
fed, and stops when the first byte of audio (past the WAV header) comes out of the
pipeline's TTS stream, read from the moment the run starts, as a satellite reads its URL.
The turns alternate between the agents; each is a new conversation, and HA's TTS cache
is cleared before each (a reply asked for again would otherwise be spoken from it).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components import assist_pipeline, tts
from homeassistant.components.assist_pipeline.pipeline import KEY_ASSIST_PIPELINE
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import Context, HomeAssistant
from homeassistant.setup import async_setup_component

from .conftest import LocaraServer
from .locara_helpers import entity_id, server_id_of, setup_entry
from .test_builtin_wyoming import entity_id_of, stt_metadata, synthesize_with_server
from .test_builtin_wyoming import ha_core as ha_core
from .test_builtin_wyoming import wyoming_entry as wyoming_entry

TURNS = int(os.environ.get("LOCARA_HA_BENCH_TURNS", "10"))
QUESTIONS = [
    "What is the capital of France?",
    "Tell me something about the moon.",
    "How do I make a cup of tea?",
    "Why is the sky blue?",
    "What should I cook for dinner tonight?",
]
RATE, WIDTH = 16000, 2
CHUNK_S = 0.02  # what a satellite sends at a time
CHUNK_BYTES = int(RATE * CHUNK_S) * WIDTH
LEAD_S, TAIL_S = 0.3, 5.0  # silence before the words; after: more than HA's VAD waits
TURN_TIMEOUT_S = 180


async def microphone(pcm: bytes, marks: dict[str, float]) -> AsyncIterator[bytes]:
    """`pcm` (with silence around it) as a microphone delivers it: each chunk once it has
    been recorded. `marks["words_end"]`: when the last chunk of the words was delivered."""
    lead, tail = bytes(int(RATE * LEAD_S) * WIDTH), bytes(int(RATE * TAIL_S) * WIDTH)
    audio = lead + pcm + tail
    words_end = len(lead) + len(pcm)
    started = time.monotonic()
    for offset in range(0, len(audio), CHUNK_BYTES):
        end = min(offset + CHUNK_BYTES, len(audio))
        await asyncio.sleep(max(0.0, started + end / (RATE * WIDTH) - time.monotonic()))
        if offset < words_end <= end:
            marks["words_end"] = time.monotonic()
        yield audio[offset:end]


async def first_audio_at(hass: HomeAssistant, token: str) -> float:
    """When the pipeline's TTS stream gave its first audio (past the WAV header); the
    stream is read to its end, as a satellite plays the whole reply."""
    stream = tts.async_get_stream(hass, token)
    assert stream is not None, f"no TTS stream {token}"
    data, first = b"", None
    async for chunk in stream.async_stream_result():
        data += chunk
        header = data.find(b"data")
        if first is None and header >= 0 and len(data) > header + 8:
            first = time.monotonic()
    assert first is not None, f"the TTS stream gave no audio ({len(data)} bytes)"
    return first


async def run_turn(hass: HomeAssistant, pipeline_id: str, pcm: bytes) -> dict[str, Any]:
    # The LLM is deterministic, so a question asked again gets the same reply, whose audio
    # HA would take from its TTS cache at once; a home's LLM replies are not repeated.
    await hass.services.async_call("tts", "clear_cache", {}, blocking=True)
    marks: dict[str, float] = {}
    events: list[assist_pipeline.PipelineEvent] = []
    reader: list[asyncio.Task[float]] = []

    def on_event(event: assist_pipeline.PipelineEvent) -> None:
        events.append(event)
        kind = event.type
        if kind is assist_pipeline.PipelineEventType.RUN_START:
            token = event.data["tts_output"]["token"]
            reader.append(hass.async_create_task(first_audio_at(hass, token)))
        elif kind is assist_pipeline.PipelineEventType.STT_VAD_END:
            marks.setdefault("vad_end", time.monotonic())
        elif kind is assist_pipeline.PipelineEventType.INTENT_START:
            marks.setdefault("intent_start", time.monotonic())
        elif kind is assist_pipeline.PipelineEventType.INTENT_PROGRESS:
            if event.data.get("tts_start_streaming"):
                marks.setdefault("tts_streaming", time.monotonic())
        elif kind is assist_pipeline.PipelineEventType.INTENT_END:
            marks.setdefault("intent_end", time.monotonic())

    async with asyncio.timeout(TURN_TIMEOUT_S):
        await assist_pipeline.async_pipeline_from_audio_stream(
            hass,
            context=Context(),
            event_callback=on_event,
            stt_metadata=stt_metadata(),
            stt_stream=microphone(pcm, marks),
            pipeline_id=pipeline_id,
            tts_audio_output={tts.ATTR_PREFERRED_FORMAT: "wav"},
        )
        assert reader, f"the run did not start: {[e.type for e in events]}"
        first_audio = await reader[0]
    errors = [e.data for e in events if e.type is assist_pipeline.PipelineEventType.ERROR]
    assert not errors, errors
    end = marks["words_end"]
    intent_end = next(e for e in events if e.type is assist_pipeline.PipelineEventType.INTENT_END)
    speech = intent_end.data["intent_output"]["response"]["speech"]["plain"]["speech"]
    return {
        "first_audio_ms": round(1000 * (first_audio - end)),
        "vad_end_ms": round(1000 * (marks["vad_end"] - end)),
        "intent_start_ms": round(1000 * (marks["intent_start"] - end)),
        "intent_end_ms": round(1000 * (marks["intent_end"] - end)),
        "streamed": "tts_streaming" in marks,
        "reply_chars": len(speech),
    }


def p(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.mark.timeout(3600)
async def test_bench_ha_pipeline(
    hass: HomeAssistant,
    wyoming_entry: ConfigEntry,
    locara_server: LocaraServer,
) -> None:
    await setup_entry(hass, locara_server)
    assert await async_setup_component(hass, "assist_pipeline", {})
    store = hass.data[KEY_ASSIST_PIPELINE].pipeline_store
    agents = {
        "wyoming": entity_id_of(hass, wyoming_entry, Platform.CONVERSATION),
        "locara": entity_id(
            hass, "conversation", f"{server_id_of(locara_server)}-conversation-locara"
        ),
    }
    tts_engine = entity_id_of(hass, wyoming_entry, Platform.TTS)
    # The server's only voice's language (`en_US`).
    tts_language = next(
        lang for lang in tts.async_get_text_to_speech_languages(hass) if lang.startswith("en")
    )
    pipelines: dict[str, str] = {}
    for name, agent in agents.items():
        pipeline = await store.async_create_item(
            {
                "name": f"bench {name}",
                "language": "en",
                "conversation_engine": agent,
                "conversation_language": "en",
                "stt_engine": entity_id_of(hass, wyoming_entry, Platform.STT),
                "stt_language": "en",
                "tts_engine": tts_engine,
                "tts_language": tts_language,
                "tts_voice": None,
                "wake_word_entity": None,
                "wake_word_id": None,
                "prefer_local_intents": False,
            }
        )
        pipelines[name] = pipeline.id
    utterances = [await synthesize_with_server(locara_server, q) for q in QUESTIONS]

    # A warm-up turn each, not counted.
    for name in agents:
        await run_turn(hass, pipelines[name], utterances[0])
    turns: dict[str, list[dict[str, Any]]] = {name: [] for name in agents}
    for index in range(TURNS):
        pcm = utterances[index % len(utterances)]
        order = list(agents) if index % 2 == 0 else list(reversed(agents))
        for name in order:
            turns[name].append(result := await run_turn(hass, pipelines[name], pcm))
            print(f"turn {index + 1}/{TURNS} {name}: {result}", flush=True)

    summary: dict[str, Any] = {"turns": TURNS, "agents": agents, "machine": platform.node()}
    print(f"\nHome Assistant pipeline, {TURNS} turns per agent (ms after the end of the words)")
    for name, results in turns.items():
        row = {}
        for key in ("first_audio_ms", "vad_end_ms", "intent_end_ms"):
            values = [r[key] for r in results]
            row[key] = {"p50": p(values, 0.5), "p90": p(values, 0.9)}
        row["streamed_turns"] = sum(r["streamed"] for r in results)
        row["reply_chars_p50"] = statistics.median(r["reply_chars"] for r in results)
        summary[name] = {**row, "raw": results}
        print(
            f"  {name:8} first TTS audio p50 {row['first_audio_ms']['p50']} "
            f"p90 {row['first_audio_ms']['p90']}; VAD end p50 {row['vad_end_ms']['p50']}; "
            f"agent done p50 {row['intent_end_ms']['p50']}; TTS streamed in "
            f"{row['streamed_turns']}/{TURNS} turns"
        )
    if out := os.environ.get("LOCARA_HA_BENCH_JSON"):
        text = json.dumps(summary, indent=2)
        await hass.async_add_executor_job(Path(out).write_text, text, "utf-8")
