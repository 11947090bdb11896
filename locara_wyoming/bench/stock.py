"""The stock Home Assistant chain on the same models, to compare voice-to-voice against.

Home Assistant's pipeline without Locara's sessions runs one stage after the other:
its VAD waits for 0.7 s of silence, then `wyoming-faster-whisper` transcribes the
whole utterance, the conversation agent writes its whole reply, and `wyoming-piper`
speaks it. The two stock servers run here as their own processes on the embedded
faster-whisper and Piper models; the conversation agent is Locara's `handle` on the
same LLM (the stock chain has no local LLM agent of its own). The silence wait and
the speaker's pre-roll are waits, not work, so they are added as constants.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from importlib.metadata import version
from pathlib import Path
from types import TracebackType

import numpy as np
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk
from wyoming.client import AsyncClient
from wyoming.info import Describe

from ..audio_format import PcmFormat, float_to_pcm16
from ..embedded_models import PIPER_JOE, WHISPER_TINY_EN
from . import client
from .report import progress
from .server_process import free_port
from .utterances import MIC_RATE

HA_SILENCE_WAIT_MS = 700.0
"""Home Assistant's default end-of-speech wait ("default" VAD sensitivity)."""
PREROLL_MS = 60.0
"""The scripted satellite's jitter-buffer pre-roll, counted in Locara's numbers too."""


class StockChain:
    def __init__(self) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="locara-stock-")
        self._processes: list[asyncio.subprocess.Process] = []
        self.whisper_uri = ""
        self.piper_uri = ""

    async def __aenter__(self) -> StockChain:
        data = Path(self._workdir.name)
        self.whisper_uri = await self._start(
            "wyoming_faster_whisper",
            "--model", str(WHISPER_TINY_EN.path()), "--data-dir", str(data / "whisper"),
            "--language", "en", "--compute-type", "int8", "--beam-size", "1",
        )  # fmt: skip
        self.piper_uri = await self._start(
            "wyoming_piper",
            "--voice", PIPER_JOE.name, "--data-dir", str(PIPER_JOE.path().parent),
            "--download-dir", str(data / "piper"),
        )  # fmt: skip
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for process in self._processes:
            if process.returncode is None:
                process.terminate()
            await process.wait()
        self._workdir.cleanup()

    async def _start(self, module: str, *args: str) -> str:
        uri = f"tcp://127.0.0.1:{free_port()}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, "--uri", uri, *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._processes.append(process)
        progress(f"  starting {module}…")
        async with asyncio.timeout(120):
            while process.returncode is None:
                try:
                    async with AsyncClient.from_uri(uri) as probe:
                        await probe.write_event(Describe().event())
                        if await probe.read_event() is not None:
                            return uri
                except OSError:
                    await asyncio.sleep(0.3)
        raise RuntimeError(
            f"{module} exited with {process.returncode} (is locara-wyoming[bench] installed?)"
        )

    async def turn(self, question: np.ndarray, handle_uri: str) -> dict[str, float]:
        """One question through the chain; the stages' times and their sum, in ms."""
        audio = PcmFormat(MIC_RATE, 2, 1)
        heard = await client.transcribe(
            self.whisper_uri, float_to_pcm16(question), audio, language="en", streaming=False
        )
        stt_ms = 1000 * heard.first_after_send(Transcript.is_type)
        text = client.transcript_text(heard)

        answer = await client.handle(handle_uri, text, uuid.uuid4().hex)
        llm_ms = 1000 * (answer.events[-1].at - answer.sent_at)

        spoken = await client.synthesize(self.piper_uri, client.handled_text(answer) or "Okay.")
        tts_ms = 1000 * spoken.first_after_send(AudioChunk.is_type)
        stages = {
            "silence_wait_ms": HA_SILENCE_WAIT_MS,
            "stt_ms": stt_ms,
            "llm_reply_ms": llm_ms,
            "tts_first_audio_ms": tts_ms,
            "playout_preroll_ms": PREROLL_MS,
        }
        return {**stages, "v2v_ms": sum(stages.values())}

    @staticmethod
    def versions() -> dict[str, str]:
        return {name: version(name) for name in ("wyoming-faster-whisper", "wyoming-piper")}
