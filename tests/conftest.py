"""Fixtures: a real server process with the embedded models, and real speech."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soxr
from faster_whisper import WhisperModel
from openai import APIConnectionError, AsyncOpenAI
from piper import PiperVoice

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.bench.server_process import ServerProcess, free_port
from locara_wyoming.bench.utterances import speak
from locara_wyoming.embedded_models import PIPER_JOE, SMOLLM2_135M, WHISPER_TINY_EN

from .prompt_tap import PromptTap

# Zeroconf stays on loopback: tests never send multicast onto the machine's network.
TEST_CONFIG = """
[server]
zeroconf_interfaces = ["127.0.0.1"]

[llm]
temperature = 0.0

[limits]
max_connections = 12
max_audio_seconds = 20
max_payload_bytes = 262144
max_data_bytes = 65536

[[personas]]
name = "locara"

[[personas]]
name = "storyteller"
system_prompt = "You are a storyteller. Tell long stories of many sentences."

[[rooms]]
satellite = "story-room"
persona = "storyteller"
"""


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


MODEL_ALIAS = "smollm2-test"


@pytest.fixture(scope="session")
async def openai_endpoint() -> AsyncIterator[str]:
    """llama.cpp's own OpenAI-compatible server on the embedded GGUF."""
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
    return PiperVoice.load(PIPER_JOE.path())


@pytest.fixture(scope="session")
def whisper() -> WhisperModel:
    return WhisperModel(str(WHISPER_TINY_EN.path()), device="cpu", compute_type="int8")


class Speech:
    """Real speech from the embedded Piper voice, in any PCM format."""

    def __init__(self, voice: PiperVoice) -> None:
        self.voice = voice
        self.rate = voice.config.sample_rate

    def at_16k(self, text: str) -> np.ndarray:
        return soxr.resample(self.float32(text), self.rate, 16000).astype(np.float32)

    def float32(self, text: str) -> np.ndarray:
        pcm = speak(self.voice, text)
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0

    def pcm(self, text: str, audio: PcmFormat) -> bytes:
        samples = soxr.resample(self.float32(text), self.rate, audio.rate)
        samples = np.repeat(samples[:, None], audio.channels, axis=1).reshape(-1)
        if audio.width == 1:
            return (np.clip(samples, -1, 1) * 127 + 128).astype(np.uint8).tobytes()
        if audio.width == 2:
            return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        if audio.width == 3:
            as_int = (np.clip(samples, -1, 1) * (2**23 - 1)).astype("<i4")
            return as_int.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        return (np.clip(samples, -1, 1) * (2**31 - 1)).astype("<i4").tobytes()


@pytest.fixture(scope="session")
def speech(piper_voice: PiperVoice) -> Speech:
    return Speech(piper_voice)


def serve_expecting_failure(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "locara.toml"
    path.write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "locara_wyoming", "serve", "--config", str(path), "--no-zeroconf",
         "--uri", "tcp://127.0.0.1:1", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
