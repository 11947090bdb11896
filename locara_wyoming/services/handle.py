"""The handle program: answer a transcript as the configured persona, streaming the text.

Its conversations are kept apart from the rooms': whatever `conversation_id` a client
sends, its history is `handle:<id>`, and a room's is `room:…` (sessions/owner.py), so
no client of this unauthenticated program can read or extend a room's conversation.
"""

from __future__ import annotations

import contextlib
import uuid

from wyoming.asr import Transcript
from wyoming.event import Event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop

from ..protocol.parsing import parse_event
from .program import Handler, ProgramLink


class HandleProgram:
    def __init__(self, link: ProgramLink) -> None:
        self._link = link

    def handlers(self) -> dict[str, Handler]:
        return {"transcript": self._transcript}

    async def _transcript(self, event: Event) -> None:
        transcript = parse_event(Transcript, event)
        self._link.check_length(transcript.text)
        context = dict(transcript.context or {})
        conversation_id = context.get("conversation_id")
        if not isinstance(conversation_id, str) or not conversation_id:
            conversation_id = uuid.uuid4().hex
        context["conversation_id"] = conversation_id
        self._link.enqueue(lambda: self._reply(transcript.text, conversation_id, context))

    async def _reply(self, text: str, conversation_id: str, context: dict[str, object]) -> None:
        write = self._link.write
        persona = self._link.context.config.persona()
        await write(HandledStart(context=context).event())
        pieces: list[str] = []
        answer = self._link.context.agent.respond(persona, f"handle:{conversation_id}", text)
        async with contextlib.aclosing(answer.pieces) as written:
            async for piece in written:
                pieces.append(piece)
                await write(HandledChunk(text=piece).event())
        await write(Handled(text="".join(pieces).strip(), context=context).event())
        await write(HandledStop().event())
