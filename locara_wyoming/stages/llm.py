"""Chat LLM: a GGUF model through llama-cpp-python, or an OpenAI-compatible endpoint."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..config import EMBEDDED, LimitsConfig, LlmConfig
from ..embedded_models import SMOLLM2_135M
from ..workers import ModelWorker
from .description import ModelDescription
from .remote import RemoteServiceError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam


MAX_PIECES_AHEAD = 1
"""The model pauses when its reader has not taken this many pieces (see `speak_reply`)."""


class ChatMessage(TypedDict):
    role: str
    content: str


class ChatModel(ABC):
    description: ModelDescription

    @abstractmethod
    async def load(self) -> None: ...

    @abstractmethod
    def stream_reply(self, messages: list[ChatMessage]) -> AsyncGenerator[str, None]:
        """Yield the reply's text pieces as the model produces them."""

    @abstractmethod
    async def prefill(self, messages: list[ChatMessage]) -> None:
        """Read the start of a coming prompt now, if the model is idle, so that only the
        new words are left to read when the prompt comes."""


class LlamaCppChat(ChatModel):
    def __init__(self, config: LlmConfig, limits: LimitsConfig) -> None:
        self.config = config
        self._worker = ModelWorker("llm", config.concurrency, limits.model_wait_s)
        self._llama: Any = None
        if config.model == EMBEDDED:
            self._path = SMOLLM2_135M.path()
            self.description = ModelDescription(
                name="SmolLM2-135M-Instruct",
                description="SmolLM2-135M-Instruct Q4_1 GGUF (embedded)",
                author=SMOLLM2_135M.author,
                url=SMOLLM2_135M.source_url,
                version=SMOLLM2_135M.version(),
                languages=["en"],
            )
        else:
            self._path = Path(config.model).expanduser()
            if not self._path.is_file():
                raise FileNotFoundError(f"llm.model: GGUF file {config.model!r} does not exist")
            self.description = ModelDescription(
                name=self._path.name.removesuffix(".gguf"),
                description=f"{self._path.name} through llama.cpp",
                author="GGUF model",
                url=str(self._path),
                version=None,
                languages=[],
            )

    async def load(self) -> None:
        from llama_cpp import Llama

        threads = self.config.threads or max(1, (os.cpu_count() or 2))
        self._llama = await self._worker.call(
            lambda: Llama(
                model_path=str(self._path),
                n_ctx=self.config.context_tokens,
                n_threads=threads,
                verbose=False,
            )
        )

    async def prefill(self, messages: list[ChatMessage]) -> None:
        llama = self._llama
        if llama is None or self._worker.busy():
            return  # a real turn goes first; it reads what it needs itself
        # llama.cpp keeps what it has read and reuses the longest common start of the
        # next prompt; one generated token is the least a completion can do.
        await self._worker.call(
            lambda: llama.create_chat_completion(messages=messages, max_tokens=1, temperature=0)
        )

    def stream_reply(self, messages: list[ChatMessage]) -> AsyncGenerator[str, None]:
        llama = self._llama
        if llama is None:
            raise RuntimeError("LLM is not loaded")

        def pieces() -> Iterator[str]:
            for chunk in llama.create_chat_completion(
                messages=messages,
                stream=True,
                max_tokens=self.config.max_tokens,
                temperature=self.config.temperature,
            ):
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    yield text

        return self._worker.stream(pieces, max_ahead=MAX_PIECES_AHEAD)


class OpenAiChat(ChatModel):
    """Any OpenAI-compatible chat endpoint: Ollama, vLLM, llama.cpp's server."""

    def __init__(self, config: LlmConfig, limits: LimitsConfig) -> None:
        from openai import AsyncOpenAI

        assert config.url is not None
        self.config = config
        self._worker = ModelWorker("llm-remote", config.concurrency, limits.model_wait_s)
        self._client = AsyncOpenAI(
            base_url=config.url,
            api_key=config.api_key or "not-needed",
            timeout=config.request_timeout_s,
            max_retries=1,
        )
        self.description = ModelDescription(
            name=config.model,
            description=f"{config.model} at {config.url}",
            author="OpenAI-compatible endpoint",
            url=config.url,
            version=None,
            languages=[],
        )

    async def load(self) -> None:
        from openai import APIError

        try:
            names = [model.id async for model in await self._client.models.list()]
        except APIError as error:
            raise RemoteServiceError(f"cannot use {self.config.url}: {error}") from None
        if self.config.model not in names:
            raise RemoteServiceError(
                f"llm.model = {self.config.model!r} is not served at {self.config.url}; "
                f"it serves {names}"
            )

    async def prefill(self, messages: list[ChatMessage]) -> None:
        """Nothing: the endpoints cache prompt prefixes themselves (vLLM, Ollama, llama.cpp)."""

    async def stream_reply(self, messages: list[ChatMessage]) -> AsyncGenerator[str, None]:
        from openai import APIError

        async with self._worker.slot():
            try:
                stream = await self._client.chat.completions.create(
                    model=self.config.model,
                    messages=cast("list[ChatCompletionMessageParam]", messages),
                    stream=True,
                    max_tokens=self.config.max_tokens,
                    temperature=self.config.temperature,
                )
                async with stream:
                    async for chunk in stream:
                        if chunk.choices and chunk.choices[0].delta.content:
                            yield chunk.choices[0].delta.content
            except APIError as error:  # down, or refusing: the request fails, not the server
                raise RemoteServiceError(f"the LLM at {self.config.url} failed: {error}") from None


def create_llm(config: LlmConfig, limits: LimitsConfig) -> ChatModel:
    if config.url is not None:
        return OpenAiChat(config, limits)
    return LlamaCppChat(config, limits)
