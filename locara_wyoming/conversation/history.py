"""Conversation history per conversation id, bounded in turns, age and count."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..stages.llm import ChatMessage


@dataclass
class Turn:
    user: str | None
    """None: the persona spoke unasked (an announcement the room was then asked to answer)."""
    assistant: str
    interrupted: bool = False
    extra_system_prompt: str | None = None
    """Added to the persona's system prompt while this turn is in the history (the
    latest such turn's): what Home Assistant told the persona with an announcement."""


@dataclass
class ConversationHistory:
    turns: deque[Turn]
    last_used: float = field(default=0.0)

    def messages(self, system_prompt: str, user_text: str | None) -> list[ChatMessage]:
        """The prompt for a new user turn; without one, the start every next prompt shares."""
        extra = next(
            (t.extra_system_prompt for t in reversed(self.turns) if t.extra_system_prompt), None
        )
        system = system_prompt if extra is None else f"{system_prompt}\n\n{extra}"
        messages: list[ChatMessage] = [{"role": "system", "content": system}]
        for turn in self.turns:
            if turn.user is not None:
                messages.append({"role": "user", "content": turn.user})
            elif not turn.assistant:
                continue  # an announcement with nothing to show, only a system prompt
            assistant = f"{turn.assistant}…" if turn.interrupted else turn.assistant
            messages.append({"role": "assistant", "content": assistant})
        if user_text is not None:
            messages.append({"role": "user", "content": user_text})
        return messages

    def add(self, turn: Turn) -> None:
        """Keep `turn`. A full history first lets its older half go at once, so that the
        prompt keeps the same start for several turns: the LLM re-reads the history once
        every `max_turns / 2` turns instead of at every turn (~700 tokens, seconds with a
        small model on two cores, when one turn at a time slid out)."""
        most = self.turns.maxlen
        if most is not None and len(self.turns) == most:
            for _ in range(max(1, most // 2)):
                self.turns.popleft()
        self.turns.append(turn)

    def forget(self, turn: Turn) -> None:
        """Take `turn` (this very one, not an equal one) out of the history."""
        for index, kept in enumerate(self.turns):
            if kept is turn:
                del self.turns[index]
                return


class ConversationStore:
    """Keeps at most the last `max_turns` turns of each conversation (see
    `ConversationHistory.add`) for `ttl_s` since its last use.

    At most `max_conversations` are kept; the least recently used goes first.
    """

    def __init__(
        self,
        max_turns: int,
        ttl_s: float,
        max_conversations: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self.max_conversations = max_conversations
        self._clock = clock
        self._conversations: OrderedDict[str, ConversationHistory] = OrderedDict()

    def __len__(self) -> int:
        return len(self._conversations)

    def get(self, conversation_id: str) -> ConversationHistory:
        now = self._clock()
        self._expire(now)
        conversation = self._conversations.pop(conversation_id, None)
        if conversation is None:
            conversation = ConversationHistory(turns=deque(maxlen=self.max_turns))
        conversation.last_used = now
        self._conversations[conversation_id] = conversation
        while len(self._conversations) > self.max_conversations:
            self._conversations.popitem(last=False)
        return conversation

    def _expire(self, now: float) -> None:
        while self._conversations:
            oldest_id, oldest = next(iter(self._conversations.items()))
            if now - oldest.last_used <= self.ttl_s:
                return
            del self._conversations[oldest_id]
