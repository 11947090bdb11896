"""Chat LLM: a GGUF model through llama-cpp-python, or an OpenAI-compatible endpoint."""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..config import EMBEDDED, LimitsConfig, LlmConfig
from ..embedded_models import SMOLLM2_135M
from ..workers import ModelBusyError, ModelWorker, Priority, Urgency
from .description import ModelDescription
from .llama_contexts import LlamaContexts
from .remote import RemoteServiceError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam


class ChatMessage(TypedDict):
    role: str
    content: str


class ChatModel(ABC):
    description: ModelDescription

    @abstractmethod
    async def load(self) -> None: ...

    @abstractmethod
    def stream_reply(
        self,
        messages: list[ChatMessage],
        conversation_id: str | None = None,
        urgency: Urgency | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text pieces as the model produces them, at the urgency's
        priority (FIRST when none is given)."""

    async def warm(self, messages: list[ChatMessage]) -> None:
        """At start: answer `messages` once (a persona's prompt), so that no user's turn
        pays for the model's first call."""
        async with contextlib.aclosing(self.stream_reply(messages)) as pieces:
            async for _piece in pieces:
                break

    @abstractmethod
    async def prefill(self, messages: list[ChatMessage], conversation_id: str) -> None:
        """Read the start of the conversation's coming prompt while the models are idle,
        so that only the new words are left to read when the prompt comes."""


def compute_slots(contexts: int, threads: int, cores: int) -> int:
    """How many contexts may decode at once: as many as the cores hold at `threads`
    each. More at once only slows every one down (llama.cpp's threads wait for each
    other at every step, and a preempted one holds up the rest)."""
    return max(1, min(contexts, cores // threads))


class LlamaCppChat(ChatModel):
    """A GGUF through llama.cpp, with `llm.concurrency` contexts (see `LlamaContexts`).

    Tokens are made one at a time on the model's worker, each when the reader asks
    for it and by the reply's urgency: another room's first clause goes between this
    reply's later tokens, and nothing is made while the reader waits (for its first
    clause's audio, say), so that the models do not slow each other down.
    """

    def __init__(self, config: LlmConfig, limits: LimitsConfig) -> None:
        self.config = config
        cores = os.cpu_count() or 2
        self._threads = config.threads or cores
        slots = compute_slots(config.concurrency, self._threads, cores)
        self._worker = ModelWorker("llm", slots, limits.model_wait_s)
        self._wait_s = limits.model_wait_s
        self._contexts: LlamaContexts | None = None
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

        def open_context() -> Any:
            return Llama(
                model_path=str(self._path),
                n_ctx=self.config.context_tokens,
                n_threads=self._threads,
                verbose=False,
            )

        contexts = [await self._worker.call(open_context) for _ in range(self.config.concurrency)]
        self._contexts = LlamaContexts(contexts, self._wait_s)

    async def warm(self, messages: list[ChatMessage]) -> None:
        """Every context reads `messages` once: besides its first call, a room's first
        turn then finds the system prompt read (~40 tokens, ~200 ms on 2 cores)."""
        contexts = self._contexts
        if contexts is None:
            raise RuntimeError("LLM is not loaded")
        for _ in range(len(contexts)):
            async with contexts.lease(None) as llama:
                await self._worker.call(
                    lambda: llama.create_chat_completion(
                        messages=messages, max_tokens=1, temperature=0
                    )
                )

    async def prefill(self, messages: list[ChatMessage], conversation_id: str) -> None:
        contexts = self._contexts
        if contexts is None:
            return
        try:
            async with self._worker.slot(Priority.IDLE):
                with contexts.own_if_free(conversation_id) as llama:
                    if llama is None:
                        return  # in use, or gone to another room: the turn reads it itself
                    # llama.cpp keeps what it has read and reuses the longest common start
                    # of the next prompt; one generated token is the least it can do.
                    await self._worker.in_thread(
                        lambda: llama.create_chat_completion(
                            messages=messages, max_tokens=1, temperature=0
                        )
                    )
        except ModelBusyError:
            return  # the models stayed busy: the turn reads what it needs itself

    async def stream_reply(
        self,
        messages: list[ChatMessage],
        conversation_id: str | None = None,
        urgency: Urgency | None = None,
    ) -> AsyncGenerator[str, None]:
        contexts = self._contexts
        if contexts is None:
            raise RuntimeError("LLM is not loaded")
        async with contexts.lease(conversation_id) as llama:

            def pieces() -> Generator[str, None, None]:
                for chunk in llama.create_chat_completion(
                    messages=messages,
                    stream=True,
                    max_tokens=self.config.max_tokens,
                    temperature=self.config.temperature,
                ):
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        yield text

            tokens = self._worker.stream_each(pieces, urgency or Urgency())
            async with contextlib.aclosing(tokens):
                async for piece in tokens:
                    yield piece


class OpenAiChat(ChatModel):
    """Any OpenAI-compatible chat endpoint: Ollama, vLLM, llama.cpp's server."""

    def __init__(self, config: LlmConfig, limits: LimitsConfig) -> None:
        from openai import AsyncOpenAI

        assert config.url is not None
        self.config = config
        self._worker = ModelWorker(
            "llm-remote", config.concurrency, limits.model_wait_s, shares_cores=False
        )
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

    async def prefill(self, messages: list[ChatMessage], conversation_id: str) -> None:
        """Nothing: the endpoints cache prompt prefixes themselves (vLLM, Ollama, llama.cpp)."""

    async def stream_reply(
        self,
        messages: list[ChatMessage],
        conversation_id: str | None = None,
        urgency: Urgency | None = None,
    ) -> AsyncGenerator[str, None]:
        from openai import APIError

        async with self._worker.slot((urgency or Urgency()).priority):
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
