"""The handle program: answer a transcript as a persona, streaming the text.

The persona is the one `context.persona` names (the Locara integration's conversation
agents name theirs), else the default one.

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

from ..config import PersonaConfig
from ..errors import BadEvent, NotFound
from ..protocol.parsing import check_text, parse_event
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
        persona = self._persona(context.get("persona"))
        self._link.enqueue(lambda: self._reply(transcript.text, persona, conversation_id, context))

    def _persona(self, name: object) -> PersonaConfig:
        """The persona `context.persona` names; the default one when it names none."""
        config = self._link.context.config
        if name is None:
            return config.persona()
        if not isinstance(name, str) or not name:
            raise BadEvent("bad 'transcript' event: context.persona must be a persona's name")
        check_text(name, "bad 'transcript' event: context.persona")
        try:
            return config.persona(name)
        except KeyError:
            names = [persona.name for persona in config.personas]
            raise NotFound(f"no persona named {name!r}; personas: {names}") from None

    async def _reply(
        self, text: str, persona: PersonaConfig, conversation_id: str, context: dict[str, object]
    ) -> None:
        write = self._link.write
        await write(HandledStart(context=context).event())
        pieces: list[str] = []
        answer = self._link.context.agent.respond(persona, f"handle:{conversation_id}", text)
        async with contextlib.aclosing(answer.pieces) as written:
            async for piece in written:
                pieces.append(piece)
                await write(HandledChunk(text=piece).event())
        await write(Handled(text="".join(pieces).strip(), context=context).event())
        await write(HandledStop().event())
