"""Stages on other engines: an OpenAI-compatible LLM endpoint and remote Wyoming asr/tts.

The endpoint is llama.cpp's own OpenAI-compatible server on the embedded GGUF; the
remote Wyoming services are the shared test server. A second Locara server uses both.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openai import APIConnectionError, AsyncOpenAI
from wyoming.client import AsyncClient
from wyoming.info import Describe, Info

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.bench import client as wy
from locara_wyoming.bench.server_process import ServerProcess, free_port
from locara_wyoming.embedded_models import SMOLLM2_135M

from .conftest import Speech, serve_expecting_failure

MODEL_ALIAS = "smollm2-test"


@pytest.fixture(scope="module")
async def openai_endpoint() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(SMOLLM2_135M.path()), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    endpoint = AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
    async with asyncio.timeout(120):
        while True:
            try:
                await endpoint.models.list()
                break
            except APIConnectionError:
                await asyncio.sleep(0.5)
    yield url
    process.terminate()
    await process.wait()


@pytest.fixture(scope="module")
async def delegating_server(
    tmp_path_factory: pytest.TempPathFactory, server: ServerProcess, openai_endpoint: str
) -> AsyncIterator[ServerProcess]:
    config = f"""
[stt]
uri = "{server.uri}"

[tts]
uri = "{server.uri}"

[llm]
url = "{openai_endpoint}"
model = "{MODEL_ALIAS}"
temperature = 0.0
"""
    process = ServerProcess(tmp_path_factory.mktemp("delegating"), config)
    await process.start()
    yield process
    await process.stop()


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
    delegating_server: ServerProcess,
) -> None:
    conversation = uuid.uuid4().hex
    await wy.handle(delegating_server.uri, "My name is Zorblax. Remember my name.", conversation)
    reply = await wy.handle(delegating_server.uri, "What is my name?", conversation)
    assert "zorblax" in wy.handled_text(reply).lower()


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
