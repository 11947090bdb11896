"""Conversation agents: one per persona, streaming Locara's answer as it is written.

Each agent asks the server's `handle` program (plain Wyoming on the server's port, as
Home Assistant's Wyoming integration does) to answer as its persona, and hands the
`handled-chunk`s on to the chat log as deltas: an Assist pipeline starts speaking on the
first words instead of waiting for the whole reply. The server keeps the history, under
the chat log's conversation id, so only the newest words are sent.

One agent per persona, not one agent with the persona as an option: a pipeline names
its conversation agent and nothing else, so the agent is how a pipeline picks a persona.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Literal

from homeassistant.components import conversation
from homeassistant.const import MATCH_ALL, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import intent
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, HandledChunk, NotHandled

from .data import LocaraConfigEntry
from .entity import LocaraEntity

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
# The longest wait for the server's next event: a request may wait for the LLM, busy
# with other rooms' replies, before its first words.
READ_TIMEOUT_S = 60.0
KEY_PREFIX = "conversation-"

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """An agent for each of the server's personas, added and removed as they change."""
    registry = er.async_get(hass)
    client = entry.runtime_data.client
    prefix = f"{entry.runtime_data.server_id}-{KEY_PREFIX}"
    added: set[str] = set()

    @callback
    def follow_personas() -> None:
        assert client.state is not None
        personas = client.state.personas
        for registered in er.async_entries_for_config_entry(registry, entry.entry_id):
            persona = registered.unique_id.removeprefix(prefix)
            if (
                registered.domain == Platform.CONVERSATION
                and registered.unique_id.startswith(prefix)
                and persona not in personas
            ):
                added.discard(persona)
                registry.async_remove(registered.entity_id)  # its entity goes with it
        new = [persona for persona in personas if persona not in added]
        added.update(new)
        if new:
            async_add_entities(LocaraConversationEntity(entry, persona) for persona in new)

    follow_personas()
    entry.async_on_unload(client.add_listener(follow_personas))


class AgentError(Exception):
    """The server could not answer: unreachable, refused, or gone in the middle."""


class LocaraConversationEntity(LocaraEntity, conversation.ConversationEntity):
    """A persona of the server as a conversation agent, its answer streamed."""

    _attr_supports_streaming = True

    def __init__(self, entry: LocaraConfigEntry, persona: str) -> None:
        super().__init__(entry, EntityDescription(key=f"{KEY_PREFIX}{persona}", name=persona))
        self.persona = persona

    @property
    def supported_languages(self) -> list[str] | Literal["*"]:
        # The LLM reads and answers whatever language it is spoken to in.
        return MATCH_ALL

    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        deltas = self._answer(user_input.text, chat_log.conversation_id)
        try:
            async for _content in chat_log.async_add_delta_content_stream(self.entity_id, deltas):
                pass
        except AgentError as error:
            _LOGGER.warning("The Locara persona %s could not answer: %s", self.persona, error)
            response = intent.IntentResponse(language=user_input.language)
            response.async_set_error(intent.IntentResponseErrorCode.UNKNOWN, str(error))
            return conversation.ConversationResult(
                response=response, conversation_id=chat_log.conversation_id
            )
        return conversation.async_get_result_from_chat_log(user_input, chat_log)

    async def _answer(
        self, text: str, conversation_id: str
    ) -> AsyncIterator[conversation.AssistantContentDeltaDict]:
        """The answer as chat log deltas, each `handled-chunk` as it arrives; AgentError
        when there is none (before or after its first words)."""
        host, port = self.client.host, self.client.port
        request = Transcript(
            text, context={"conversation_id": conversation_id, "persona": self.persona}
        )
        written = False
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await (connection := AsyncTcpClient(host, port)).connect()
        except (OSError, TimeoutError) as error:
            raise AgentError(
                f"cannot reach the Locara server at {host}:{port}: {error!r}"
            ) from error
        try:
            await connection.write_event(request.event())
            yield {"role": "assistant"}
            while True:
                event = await _next_event(connection)
                if HandledChunk.is_type(event.type):
                    if piece := HandledChunk.from_event(event).text:
                        written = True
                        yield {"content": piece}
                elif Handled.is_type(event.type):
                    if not written:
                        raise AgentError("the Locara server gave an empty answer")
                    return
                elif NotHandled.is_type(event.type):
                    raise AgentError(f"not handled: {NotHandled.from_event(event).text}")
                elif Error.is_type(event.type):
                    refusal = Error.from_event(event)
                    raise AgentError(f"the Locara server refused ({refusal.code}): {refusal.text}")
        except OSError as error:
            raise AgentError(f"lost the Locara server at {host}:{port}: {error!r}") from error
        finally:
            with contextlib.suppress(OSError):
                await connection.disconnect()


async def _next_event(connection: AsyncTcpClient) -> Event:
    try:
        event = await asyncio.wait_for(connection.read_event(), READ_TIMEOUT_S)
    except TimeoutError as error:
        raise AgentError(f"no answer from the Locara server within {READ_TIMEOUT_S:g} s") from error
    if event is None:
        raise AgentError("the Locara server closed the connection before it answered")
    return event
