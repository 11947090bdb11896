"""The handle program: the LLM answers as the persona, remembering each conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..config import PersonaConfig
from ..stages.llm import ChatModel
from .history import ConversationStore, Turn


class ConversationAgent:
    def __init__(self, llm: ChatModel, store: ConversationStore) -> None:
        self.llm = llm
        self.store = store

    async def reply(
        self, persona: PersonaConfig, conversation_id: str, text: str
    ) -> AsyncIterator[str]:
        """Stream the reply; the turn joins the history once the reply ends or is cut off."""
        conversation = self.store.get(conversation_id)
        messages = conversation.messages(persona.system_prompt, text)
        pieces: list[str] = []
        finished = False
        try:
            async for piece in self.llm.stream_reply(messages):
                pieces.append(piece)
                yield piece
            finished = True
        finally:
            if pieces or finished:
                conversation.turns.append(
                    Turn(user=text, assistant="".join(pieces).strip(), interrupted=not finished)
                )
