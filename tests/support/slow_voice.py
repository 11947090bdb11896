"""A Wyoming asr and tts server of a known, fixed slowness, for a Locara server to
delegate to (`stt.uri`, `tts.uri`): a request that takes long on every machine, however
fast, without a model.

Each `synthesize` answers with `SPOKEN_S` of silence, one chunk every `CHUNK_S`; each
`transcribe` hears nothing.
"""

from __future__ import annotations

import asyncio
import contextlib

from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import async_read_event, async_write_event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.tts import Synthesize

RATE = 16000
CHUNK_S = 0.1
SPOKEN_S = 1.0
"""How long each synthesis takes, whatever the text: its audio at real time."""

_BY = Attribution(name="Locara's tests", url="")
INFO = Info(
    asr=[AsrProgram(name="deaf", attribution=_BY, installed=True, description="hears nothing",
                    version="1", models=[AsrModel(name="deaf", attribution=_BY, installed=True,
                    description="hears nothing", version="1", languages=["en"])])],
    tts=[TtsProgram(name="slow", attribution=_BY, installed=True, description="speaks slowly",
                    version="1", voices=[TtsVoice(name="slow", attribution=_BY, installed=True,
                    description="silence at real time", version="1", languages=["en"])])],
)  # fmt: skip


class SlowVoice:
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.uri = ""
        self.synthesized: list[str] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.uri = f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while (event := await async_read_event(reader)) is not None:
                if Describe.is_type(event.type):
                    await async_write_event(INFO.event(), writer)
                elif Synthesize.is_type(event.type):
                    self.synthesized.append(Synthesize.from_event(event).text)
                    await async_write_event(AudioStart(RATE, 2, 1).event(), writer)
                    for _ in range(round(SPOKEN_S / CHUNK_S)):
                        await asyncio.sleep(CHUNK_S)
                        silence = bytes(2 * round(RATE * CHUNK_S))
                        await async_write_event(AudioChunk(RATE, 2, 1, silence).event(), writer)
                    await async_write_event(AudioStop().event(), writer)
                elif AudioStop.is_type(event.type):
                    await async_write_event(Transcript(text="").event(), writer)
        writer.close()
