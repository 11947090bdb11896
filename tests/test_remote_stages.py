"""Stages on other engines: an OpenAI-compatible LLM endpoint and remote Wyoming asr/tts.

The endpoint is llama.cpp's own OpenAI-compatible server on the embedded GGUF; the
remote Wyoming services are the shared test server. A second Locara server uses both.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from wyoming.asr import Transcript
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.info import Describe, Info

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.bench import client as wy
from locara_wyoming.bench.server_process import ServerProcess, free_port

from .support.prompt_tap import PromptTap
from .support.servers import MODEL_ALIAS, serve_expecting_failure
from .support.speech import Speech

pytestmark = pytest.mark.models


async def test_info_describes_the_remote_models(delegating_server: ServerProcess) -> None:
    async with AsyncClient.from_uri(delegating_server.uri) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
    assert event is not None
    info = Info.from_event(event)
    assert info.asr[0].models[0].name == "tiny.en"
    assert info.tts[0].voices[0].name == "en_US-joe-medium"
    assert info.handle[0].models[0].name == MODEL_ALIAS


async def test_asr_and_tts_through_a_remote_wyoming_server(
    delegating_server: ServerProcess, speech: Speech
) -> None:
    audio = PcmFormat(48000, 2, 1)
    reply = await wy.transcribe(
        delegating_server.uri, speech.pcm("Open the garage door.", audio), audio
    )
    assert "garage" in wy.transcript_text(reply).lower()
    spoken = await wy.synthesize(delegating_server.uri, "Hello from far away.")
    assert spoken.audio_format() == PcmFormat(22050, 2, 1)
    assert len(spoken.audio()) > 22050


async def test_handle_through_an_openai_compatible_endpoint(
    delegating_server: ServerProcess, prompt_tap: PromptTap
) -> None:
    conversation = uuid.uuid4().hex
    first = await wy.handle(delegating_server.uri, "My name is Zorblax.", conversation)
    second = await wy.handle(delegating_server.uri, "What is my name?", conversation)
    assert wy.handled_text(second) != ""
    sent = prompt_tap.chats()[-1]
    assert sent[0]["role"] == "system"
    assert sent[1:] == [
        {"role": "user", "content": "My name is Zorblax."},
        {"role": "assistant", "content": wy.handled_text(first)},
        {"role": "user", "content": "What is my name?"},
    ]


async def test_an_endpoint_that_goes_away_fails_the_request_and_the_connection_goes_on(
    delegating_server: ServerProcess, prompt_tap: PromptTap
) -> None:
    conversation = uuid.uuid4().hex

    async def ask(client: AsyncClient, text: str) -> Event:
        """The request's last event: `handled-stop`, or an `error`."""
        context = {"conversation_id": conversation}
        await client.write_event(Transcript(text=text, context=context).event())
        async with asyncio.timeout(60):
            while (event := await client.read_event()) is not None:
                if event.type in ("handled-stop", "error"):
                    return event
        raise AssertionError("the server closed the connection")

    async with AsyncClient.from_uri(delegating_server.uri) as client:
        with prompt_tap.outage():
            failed = await ask(client, "My name is Zorblax.")
        assert failed.type == "error" and failed.data["code"] == "remote-failed", failed
        assert f"the LLM at {prompt_tap.url} failed" in failed.data["text"]
        answered = await ask(client, "What is my name?")
    assert answered.type == "handled-stop"
    # The turn that failed before its first word left nothing in the history.
    assert prompt_tap.chats()[-1][1:] == [{"role": "user", "content": "What is my name?"}]
    assert "Traceback" not in "\n".join(delegating_server.log)


def test_unreachable_remote_stage_stops_start_with_a_clear_message(tmp_path: Path) -> None:
    result = serve_expecting_failure(tmp_path, f'[stt]\nuri = "tcp://127.0.0.1:{free_port()}"\n')
    assert result.returncode == 3
    assert "Cannot start: cannot reach tcp://127.0.0.1:" in result.stderr


def test_model_not_served_by_the_endpoint_is_named(tmp_path: Path, openai_endpoint: str) -> None:
    result = serve_expecting_failure(
        tmp_path, f'[llm]\nurl = "{openai_endpoint}"\nmodel = "gpt-99"\n'
    )
    assert result.returncode == 3
    assert f"llm.model = 'gpt-99' is not served at {openai_endpoint}" in result.stderr
