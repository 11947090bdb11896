"""The conversation agent: the LLM answers as the persona, remembering each conversation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from ..config import PersonaConfig
from ..stages.llm import ChatMessage, ChatModel
from ..workers import Urgency
from .history import ConversationHistory, ConversationStore, Turn


@dataclass
class AgentReply:
    """A reply being written. Its turn is already in the history and grows with the text;
    it stays marked interrupted until the reply ends."""

    turn: Turn
    pieces: AsyncGenerator[str, None]
    conversation: ConversationHistory
    urgency: Urgency
    """The priority of the pieces still to come: its reader lowers it to LATER once the
    first clause is out, so that other rooms' first clauses go before the rest."""

    def withdraw(self) -> None:
        """Take the turn back out of the history (a speculative answer nobody heard)."""
        self.conversation.forget(self.turn)


class ConversationAgent:
    """Answers as a persona, remembering each conversation.

    Once a reply is written, the next turn's prompt up to its new words is known:
    the model reads it while idle (`ChatModel.prefill`), on the conversation's own
    context. Without that, each turn after the history window starts to slide would
    read the whole history again (seconds with a small model on two cores) before its
    first word.
    """

    def __init__(self, llm: ChatModel, store: ConversationStore) -> None:
        self.llm = llm
        self.store = store
        self._prefills: set[asyncio.Task[None]] = set()

    def respond(self, persona: PersonaConfig, conversation_id: str, text: str) -> AgentReply:
        conversation = self.store.get(conversation_id)
        messages = conversation.messages(persona.system_prompt, text)
        turn = Turn(user=text, assistant="", interrupted=True)
        conversation.add(turn)
        urgency = Urgency()
        written = self._write(messages, turn, persona, conversation_id, conversation, urgency)
        return AgentReply(turn, written, conversation, urgency)

    def told(self, conversation_id: str, text: str, answer: str) -> AgentReply:
        """A reply someone else wrote (Home Assistant's), kept in the history as the LLM's
        would be, so that the LLM knows of it in later turns."""
        conversation = self.store.get(conversation_id)
        turn = Turn(user=text, assistant="", interrupted=True)
        conversation.add(turn)
        return AgentReply(turn, _told(turn, answer), conversation, Urgency())

    def announced(
        self,
        persona: PersonaConfig,
        conversation_id: str,
        text: str,
        extra_system_prompt: str | None = None,
        interrupted: bool = False,
    ) -> None:
        """The room heard `text` announced and is now asked to answer it: it joins the
        history as the persona's own words (so "yes" answers something), and
        `extra_system_prompt` joins the persona's prompt while it stays there. The next
        prompt is read while the user thinks of an answer."""
        if not text.strip() and not extra_system_prompt:
            return
        conversation = self.store.get(conversation_id)
        conversation.add(
            Turn(
                user=None,
                assistant=text.strip(),
                interrupted=interrupted,
                extra_system_prompt=extra_system_prompt or None,
            )
        )
        self._prefill(persona, conversation_id, conversation)

    async def _write(
        self,
        messages: list[ChatMessage],
        turn: Turn,
        persona: PersonaConfig,
        conversation_id: str,
        conversation: ConversationHistory,
        urgency: Urgency,
    ) -> AsyncGenerator[str, None]:
        written = ""
        reply = self.llm.stream_reply(messages, conversation_id, urgency)
        try:
            async with contextlib.aclosing(reply) as pieces:
                async for piece in pieces:
                    written += piece
                    turn.assistant = written.strip()
                    yield piece
        except Exception:
            if not written:  # failed before its first word: the turn leaves no trace
                conversation.forget(turn)
            raise
        turn.interrupted = False
        self._prefill(persona, conversation_id, conversation)

    def _prefill(
        self, persona: PersonaConfig, conversation_id: str, conversation: ConversationHistory
    ) -> None:
        prefill = asyncio.create_task(
            self.llm.prefill(conversation.messages(persona.system_prompt, None), conversation_id)
        )
        self._prefills.add(prefill)
        prefill.add_done_callback(self._prefills.discard)


async def _told(turn: Turn, answer: str) -> AsyncGenerator[str, None]:
    turn.assistant = answer
    yield answer
    turn.interrupted = False
