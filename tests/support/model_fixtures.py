"""Fixtures backed by the embedded models: a server process, llama.cpp's OpenAI-compatible
endpoint, Piper's voice and Whisper.

A pytest plugin (tests/conftest.py loads it). It imports no model runtime itself: each
fixture imports what it needs when a test marked `models` first asks for it, so the
fast tier collects and runs from the base install. A test that asks for one of
`MODEL_FIXTURES` without the marker stops the run as it starts (tests/support/tiers.py).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from locara_wyoming.bench.server_process import ServerProcess, free_port

from .prompt_tap import PromptTap
from .servers import MODEL_ALIAS, TEST_CONFIG
from .speech import Speech

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from piper import PiperVoice

MODEL_FIXTURES = frozenset(
    {"server", "delegating_server", "openai_endpoint", "prompt_tap", "piper_voice", "whisper",
     "speech"}
)  # fmt: skip
"""The fixtures here that load a model (or start a server, which loads them all)."""


@pytest.fixture(scope="session")
def zeroconf_name() -> str:
    return f"locara-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def server(
    tmp_path_factory: pytest.TempPathFactory, zeroconf_name: str
) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(
        tmp_path_factory.mktemp("server"), TEST_CONFIG, extra_args=["--zeroconf", zeroconf_name]
    ) as process:
        yield process


@pytest.fixture(scope="session")
async def openai_endpoint() -> AsyncIterator[str]:
    """llama.cpp's own OpenAI-compatible server on the embedded GGUF."""
    from openai import APIConnectionError, AsyncOpenAI

    from locara_wyoming.embedded_models import SMOLLM2_135M

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


@pytest.fixture(scope="session")
async def prompt_tap(openai_endpoint: str) -> AsyncIterator[PromptTap]:
    """The endpoint seen through a relay that keeps every chat request."""
    tap = PromptTap(openai_endpoint)
    await tap.start()
    yield tap
    await tap.stop()


@pytest.fixture(scope="session")
async def delegating_server(
    tmp_path_factory: pytest.TempPathFactory, server: ServerProcess, prompt_tap: PromptTap
) -> AsyncIterator[ServerProcess]:
    """A second server: asr and tts from the first one, the LLM from the endpoint."""
    config = f"""
[stt]
uri = "{server.uri}"

[tts]
uri = "{server.uri}"

[llm]
url = "{prompt_tap.url}"
model = "{MODEL_ALIAS}"
temperature = 0.0
"""
    async with ServerProcess(tmp_path_factory.mktemp("delegating"), config) as process:
        yield process


@pytest.fixture(scope="session")
def piper_voice() -> PiperVoice:
    from piper import PiperVoice

    from locara_wyoming.embedded_models import PIPER_JOE

    return PiperVoice.load(PIPER_JOE.path())


@pytest.fixture(scope="session")
def whisper() -> WhisperModel:
    from faster_whisper import WhisperModel

    from locara_wyoming.embedded_models import WHISPER_TINY_EN

    return WhisperModel(str(WHISPER_TINY_EN.path()), device="cpu", compute_type="int8")


@pytest.fixture(scope="session")
def speech(piper_voice: PiperVoice) -> Speech:
    return Speech(piper_voice)
