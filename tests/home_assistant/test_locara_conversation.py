"""The Locara integration's conversation agents against a real server: one per persona,
following the server's personas, each answering with the server's LLM as that persona,
streaming the answer into Home Assistant's chat log as it is written, keeping the
conversation's history on the server under Home Assistant's conversation id, and
turning a server that refuses or is gone into a conversation error."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import MATCH_ALL
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import chat_session, intent
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.handle import Handled

from custom_components.locara.home_control import PASSES_SATELLITE

from .conftest import DEFAULT_CONFIG_EXTRA, LocaraServer
from .locara_helpers import entity_id, server_id_of, setup_entry, state_of, wait_until, words

CONFIG_EXTRA = (
    DEFAULT_CONFIG_EXTRA
    + """
[limits]
max_text_chars = 200

[[personas]]
name = "locara"

[[personas]]
name = "pirate"
system_prompt = "You are a pirate. Answer in one short sentence."
"""
)
REPLY_TIMEOUT_S = 240  # four LLM answers in a row on a loaded 2-core machine


@pytest.fixture(scope="module")
def locara_config_extra() -> str:
    return CONFIG_EXTRA


@pytest.fixture(autouse=True)
async def ha_core(hass: HomeAssistant) -> None:
    """Home Assistant's core integration, which a real HA always has (conversation needs it)."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
async def entry(hass: HomeAssistant, locara_server: LocaraServer) -> ConfigEntry:
    return await setup_entry(hass, locara_server)


def agent_of(hass: HomeAssistant, server: LocaraServer, persona: str) -> str:
    return entity_id(hass, "conversation", f"{server_id_of(server)}-conversation-{persona}")


async def converse(
    hass: HomeAssistant, agent_id: str, text: str, conversation_id: str | None = None
) -> conversation.ConversationResult:
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        return await conversation.async_converse(
            hass, text, conversation_id, Context(), language="en", agent_id=agent_id
        )


def speech_of(result: conversation.ConversationResult) -> str:
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE, (
        result.response.as_dict()
    )
    speech: str = result.response.speech["plain"]["speech"]
    return speech


async def handle_directly(
    server: LocaraServer, text: str, conversation_id: str, persona: str
) -> str:
    """The server's own answer through its handle program, not through Home Assistant."""
    context = {"conversation_id": conversation_id, "persona": persona}
    async with AsyncTcpClient(server.host, server.port) as client:
        await client.write_event(Transcript(text, context=context).event())
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            while (event := await client.read_event()) is not None:
                assert event.type != "error", event.data
                if Handled.is_type(event.type):
                    return Handled.from_event(event).text or ""
    raise AssertionError("the server closed the connection before it answered")


async def test_each_persona_is_an_agent_that_answers_as_it(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    agents = {persona: agent_of(hass, locara_server, persona) for persona in ("locara", "pirate")}
    for agent_id in agents.values():
        info = conversation.async_get_agent_info(hass, agent_id)
        assert info is not None, f"HA does not list {agent_id} among its conversation agents"
        # Any language: the LLM answers in the one it is spoken to in.
        assert conversation.async_get_conversation_languages(hass, agent_id) == MATCH_ALL
        assert state_of(hass, agent_id) not in (None, "unavailable")
        agent = conversation.async_get_agent(hass, agent_id)
        assert isinstance(agent, conversation.ConversationEntity) and agent.supports_streaming

    # The LLM is deterministic (temperature 0): each agent's answer in a new conversation
    # is the server's own answer as that persona, and the two personas answer apart.
    question = "Who are you?"
    answers = {
        persona: speech_of(await converse(hass, agent_id, question)).strip()
        for persona, agent_id in agents.items()
    }
    for persona, answer in answers.items():
        assert answer, f"{persona} gave no answer"
        assert answer == await handle_directly(
            locara_server, question, uuid.uuid4().hex, persona
        ), persona
    assert answers["locara"] != answers["pirate"]


async def test_the_answer_streams_into_the_chat_log_as_it_is_written(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    """The deltas reach the chat log's listener (what an Assist pipeline feeds its
    streaming text-to-speech from) one piece after another while the answer is written."""
    agent_id = agent_of(hass, locara_server, "locara")
    deltas: list[tuple[float, dict[str, Any]]] = []
    user_input = conversation.ConversationInput(
        text="Tell me about the moon.",
        context=Context(),
        conversation_id=None,
        device_id=None,
        **({"satellite_id": None} if PASSES_SATELLITE else {}),  # newer releases only
        language="en",
        agent_id=agent_id,
    )
    with (
        chat_session.async_get_chat_session(hass, None) as session,
        conversation.async_get_chat_log(
            hass,
            session,
            user_input,
            chat_log_delta_listener=lambda _log, delta: deltas.append((time.monotonic(), delta)),
        ),
    ):
        result = await converse(hass, agent_id, user_input.text, session.conversation_id)
        ended = time.monotonic()

    pieces = [(at, delta["content"]) for at, delta in deltas if delta.get("content")]
    assert deltas[0][1] == {"role": "assistant"}, deltas[:2]
    assert len(pieces) >= 3, f"the answer came in {len(pieces)} piece(s): {pieces}"
    assert "".join(text for _, text in pieces).strip() == speech_of(result).strip()
    # Written one after another, not handed over at the end in one go.
    assert pieces[0][0] < pieces[-1][0] <= ended, pieces


async def test_the_conversation_id_carries_the_history_on_the_server(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    agent_id = agent_of(hass, locara_server, "locara")
    first = await converse(hass, agent_id, "My name is Zorblax. Remember my name.")
    conversation_id = first.conversation_id
    assert conversation_id and speech_of(first)

    # The server keeps the history under Home Assistant's id: a request of its own with
    # that id sees the first turn...
    direct = await handle_directly(locara_server, "What is my name?", conversation_id, "locara")
    assert "zorblax" in words(direct), direct
    # ...as does the agent's next turn in the conversation, and no other conversation.
    again = await converse(hass, agent_id, "What is my name?", conversation_id)
    assert again.conversation_id == conversation_id
    assert "zorblax" in words(speech_of(again)), speech_of(again)
    other = await converse(hass, agent_id, "What is my name?")
    assert other.conversation_id != conversation_id
    assert "zorblax" not in words(speech_of(other)), speech_of(other)


async def test_agents_follow_the_servers_personas(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    client = entry.runtime_data.client
    assert client.state is not None
    personas = client.state.settings["personas"]
    butler = {"name": "butler", "system_prompt": "You are a butler. Answer in one sentence."}

    await client.change_settings({"personas": [*personas, butler]})
    unique_id = f"{server_id_of(locara_server)}-conversation-butler"
    registry = er.async_get(hass)
    await wait_until(
        lambda: registry.async_get_entity_id("conversation", "locara", unique_id) is not None,
        "the butler's agent",
    )
    butler_agent = agent_of(hass, locara_server, "butler")
    await wait_until(lambda: state_of(hass, butler_agent) is not None, "its state")
    assert speech_of(await converse(hass, butler_agent, "Good evening."))

    await client.change_settings({"personas": personas})
    await wait_until(
        lambda: registry.async_get_entity_id("conversation", "locara", unique_id) is None,
        "the butler's agent removed",
    )
    await hass.async_block_till_done()
    assert state_of(hass, butler_agent) is None
    assert conversation.async_get_agent(hass, butler_agent) is None
    # The others stay.
    assert state_of(hass, agent_of(hass, locara_server, "pirate")) not in (None, "unavailable")


async def test_a_refusal_and_a_server_that_is_gone_are_conversation_errors(
    hass: HomeAssistant, locara_server: LocaraServer, entry: ConfigEntry
) -> None:
    agent_id = agent_of(hass, locara_server, "pirate")

    refused = await converse(hass, agent_id, "Tell me more. " * 20)  # over max_text_chars
    assert refused.response.response_type is intent.IntentResponseType.ERROR
    assert refused.response.error_code is intent.IntentResponseErrorCode.UNKNOWN
    assert "too-large" in speech_of_error(refused), refused.response.as_dict()

    await locara_server.async_stop()
    gone = await converse(hass, agent_id, "Are you there?")
    assert gone.response.response_type is intent.IntentResponseType.ERROR
    assert "cannot reach the Locara server" in speech_of_error(gone), gone.response.as_dict()


def speech_of_error(result: conversation.ConversationResult) -> str:
    speech: str = result.response.speech["plain"]["speech"]
    return speech
