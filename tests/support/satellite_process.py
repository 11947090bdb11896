"""Run `locara-satellite` from the satellite-only environment and follow its log."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr

from locara_satellite.audio import wav_files
from locara_wyoming.audio_format import pcm_to_float
from locara_wyoming.bench.log_lines import LogLines
from locara_wyoming.protocol.auth import PairingCode

from .speech import Speech

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

ROOT = Path(__file__).resolve().parents[2]
SATELLITE_PYTHON = ROOT / ".venv-satellite" / "bin" / "python"
RATE = 16000


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """A 16-bit WAV file's rate and mono float32 samples."""
    audio, pcm = wav_files.read_wav(path)
    return audio.rate, pcm_to_float(pcm, audio.width)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.float32)


def spoken(speech: Speech, *parts: str | float) -> np.ndarray:
    """What a microphone hears: text is said, numbers are seconds of silence."""
    return np.concatenate(
        [silence(part) if isinstance(part, float) else speech.at_16k(part) for part in parts]
    )


def words_in(path: Path, whisper: WhisperModel) -> list[str]:
    """The words a speaker played into the WAV file at `path`."""
    rate, audio = read_wav(path)
    segments, _ = whisper.transcribe(soxr.resample(audio, rate, RATE).astype(np.float32))
    return re.findall(r"[a-z']+", " ".join(s.text for s in segments).lower())


class SatelliteProcess:
    def __init__(self, *args: str, python: Path = SATELLITE_PYTHON) -> None:
        assert python.exists(), f"{python} is missing: `scripts/setup.sh test` makes it"
        self.args = ["-m", "locara_satellite", *args]
        self.python = python
        self.log = LogLines()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> SatelliteProcess:
        self.process = await asyncio.create_subprocess_exec(
            str(self.python), *self.args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            self.log.add(raw)

    def lines(self, text: str) -> list[str]:
        return self.log.matching(text)

    async def wait_for(self, text: str, count: int = 1, timeout_s: float = 60.0) -> str:
        return await self.log.wait_for(text, count, timeout_s)

    async def finish(self, timeout_s: float = 120.0) -> int:
        assert self.process is not None and self._reader is not None
        async with asyncio.timeout(timeout_s):
            code = await self.process.wait()
            await self._reader
        return code

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.finish(30.0)

    def output(self) -> str:
        return "\n".join(self.log)


async def pair(code: PairingCode | str, data_dir: Path, *more: str) -> tuple[int, str]:
    """`locara-satellite --pair CODE --data-dir DIR`: (exit code, output)."""
    text = code.encode() if isinstance(code, PairingCode) else code
    run = await SatelliteProcess("--pair", text, "--data-dir", str(data_dir), *more).start()
    return await run.finish(), run.output()
