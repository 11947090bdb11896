"""Text-to-speech: Piper voices in-process, or a remote Wyoming tts service."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from ..audio_format import PcmFormat
from ..config import EMBEDDED, LimitsConfig, TtsConfig
from ..embedded_models import PIPER_JOE
from ..errors import NotFound
from ..workers import ModelWorker, Priority
from .description import ModelDescription
from .remote import RemoteServiceError, read_until, wyoming_connection


class VoiceNotFoundError(NotFound, LookupError):
    """A request named a voice or speaker the server does not have."""


@dataclass(frozen=True)
class VoiceDescription:
    model: ModelDescription
    speakers: list[str]
    audio: PcmFormat


class TextToSpeech(ABC):
    """Speaks text as PCM blocks (one or more per sentence) in the voice's format."""

    voices: dict[str, VoiceDescription]
    default_voice: str

    @abstractmethod
    async def load(self) -> None: ...

    @abstractmethod
    def synthesize(
        self, text: str, voice: str, speaker: str | None, priority: Priority = Priority.FIRST
    ) -> AsyncGenerator[bytes, None]:
        """`priority`: LATER for a reply's later clauses, so that other rooms' first
        clauses are spoken before them."""

    def resolve_voice(self, name: str | None, language: str | None = None) -> str:
        """The voice to use for a request: by name, else by language, else the default."""
        if name:
            if name not in self.voices:
                raise VoiceNotFoundError(f"no voice named {name!r}; voices: {sorted(self.voices)}")
            return name
        if language:
            wanted = language.replace("-", "_").lower()
            for voice_name, voice in self.voices.items():
                languages = [lang.replace("-", "_").lower() for lang in voice.model.languages]
                if any(lang == wanted or lang.split("_")[0] == wanted for lang in languages):
                    return voice_name
        return self.default_voice


def _piper_voice_description(
    path: Path, config: dict[str, Any], embedded: bool
) -> VoiceDescription:
    name = path.name.removesuffix(".onnx")
    language = config.get("language", {}).get("code") or config.get("espeak", {}).get("voice", "")
    speaker_ids: dict[str, int] = config.get("speaker_id_map", {})
    return VoiceDescription(
        model=ModelDescription(
            name=name,
            description=f"Piper {name}" + (" (embedded)" if embedded else ""),
            author=PIPER_JOE.author if embedded else "Piper voice",
            url=PIPER_JOE.source_url if embedded else str(path),
            version=PIPER_JOE.version() if embedded else config.get("piper_version"),
            languages=[language] if language else [],
        ),
        speakers=sorted(speaker_ids, key=speaker_ids.__getitem__),
        audio=PcmFormat(rate=int(config["audio"]["sample_rate"]), width=2, channels=1),
    )


SENTENCE_ENDS = (".", "!", "?", "\u2026")
PAUSE_WITHIN_SENTENCE_S = 0.04
_SILENT = 100
"""Below this 16-bit amplitude (-50 dBFS) a sample is silence."""


def trim_trailing_silence(pcm: bytes, rate: int) -> bytes:
    """Piper ends every text it speaks with 100-200 ms of silence, as after a sentence. A
    piece that stops mid-sentence (a reply's short first piece) is followed by the rest of
    its sentence: keep only a pause the length of one within a sentence."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SILENT)
    if not len(loud):
        return pcm
    end = min(len(samples), loud[-1] + 1 + int(rate * PAUSE_WITHIN_SENTENCE_S))
    return samples[:end].tobytes()


class PiperTts(TextToSpeech):
    def __init__(self, config: TtsConfig, limits: LimitsConfig) -> None:
        self.config = config
        self._worker = ModelWorker("tts", config.concurrency, limits.model_wait_s)
        self._paths: dict[str, tuple[Path, bool]] = {}
        for entry in config.voices:
            embedded = entry == EMBEDDED
            path = PIPER_JOE.path() if embedded else Path(entry).expanduser()
            if not embedded:
                if not path.is_file():
                    raise FileNotFoundError(f"tts.voices: Piper voice {entry!r} does not exist")
                if not Path(f"{path}.json").is_file():
                    raise FileNotFoundError(
                        f"tts.voices: {entry!r} has no {path.name}.json beside it"
                    )
            self._paths[path.name.removesuffix(".onnx")] = (path, embedded)
        self.voices = {}
        self._loaded: dict[str, Any] = {}
        self.default_voice = config.default_voice or next(iter(self._paths))
        if self.default_voice not in self._paths:
            raise VoiceNotFoundError(
                f"tts.default_voice = {self.default_voice!r} is not one of {sorted(self._paths)}"
            )

    async def load(self) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        def read(path: Path) -> tuple[Any, dict[str, Any]]:
            config = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
            # PiperVoice.load would open the model with onnxruntime's memory arena, which
            # keeps the buffers of the longest sentence so far for good (+400 MB after
            # one of 22 s). Without it they are freed after each sentence, and the memory
            # releaser hands them back; synthesis was no slower (measured).
            options = onnxruntime.SessionOptions()
            options.enable_cpu_mem_arena = False
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            return PiperVoice(config=PiperConfig.from_dict(config), session=session), config

        for name, (path, embedded) in self._paths.items():
            self._loaded[name], config = await self._worker.call(partial(read, path))
            self.voices[name] = _piper_voice_description(path, config, embedded)

    def synthesize(
        self, text: str, voice: str, speaker: str | None, priority: Priority = Priority.FIRST
    ) -> AsyncGenerator[bytes, None]:
        from piper import SynthesisConfig

        description = self.voices[voice]
        speaker_id = None
        if speaker:
            if speaker not in description.speakers:
                raise VoiceNotFoundError(f"voice {voice!r} has no speaker {speaker!r}")
            speaker_id = description.speakers.index(speaker)
        piper_voice = self._loaded[voice]

        mid_sentence = not text.rstrip().rstrip("\"')]").endswith(SENTENCE_ENDS)
        rate = description.audio.rate

        def blocks() -> Generator[bytes, None, None]:
            for chunk in piper_voice.synthesize(text, SynthesisConfig(speaker_id=speaker_id)):
                audio = chunk.audio_int16_bytes
                yield trim_trailing_silence(audio, rate) if mid_sentence else audio

        # Sentence by sentence, each when asked for: a listener that stops reading holds
        # no audio made ahead and does not keep Piper from other rooms.
        return self._worker.stream_each(blocks, priority)


class WyomingTts(TextToSpeech):
    """Delegates to another Wyoming tts server (e.g. wyoming-piper on another machine)."""

    def __init__(self, config: TtsConfig, limits: LimitsConfig) -> None:
        assert config.uri is not None
        self.uri = config.uri
        self._worker = ModelWorker(
            "tts-remote", config.concurrency, limits.model_wait_s, shares_cores=False
        )
        self._requested_default = config.default_voice
        self.voices = {}
        self.default_voice = ""

    async def load(self) -> None:
        async with wyoming_connection(self.uri) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await read_until(client, Info.is_type))
        for program in info.tts:
            for voice in program.voices:
                self.voices[voice.name] = VoiceDescription(
                    model=ModelDescription(
                        name=voice.name,
                        description=f"{voice.description or voice.name} via {self.uri}",
                        author=voice.attribution.name,
                        url=voice.attribution.url,
                        version=voice.version,
                        languages=voice.languages,
                    ),
                    speakers=[s.name for s in voice.speakers or []],
                    # The real format comes with each reply's audio-start.
                    audio=PcmFormat(rate=22050, width=2, channels=1),
                )
        if not self.voices:
            raise RemoteServiceError(f"{self.uri} offers no tts voice")
        self.default_voice = next(iter(self.voices))
        if self._requested_default is not None:
            self.default_voice = self.resolve_voice(self._requested_default)

    async def synthesize(
        self, text: str, voice: str, speaker: str | None, priority: Priority = Priority.FIRST
    ) -> AsyncGenerator[bytes, None]:
        async with self._worker.slot(priority), wyoming_connection(self.uri) as client:
            request = Synthesize(text=text, voice=SynthesizeVoice(name=voice, speaker=speaker))
            await client.write_event(request.event())
            start = AudioStart.from_event(await read_until(client, AudioStart.is_type))
            self.voices[voice] = VoiceDescription(
                model=self.voices[voice].model,
                speakers=self.voices[voice].speakers,
                audio=PcmFormat(rate=start.rate, width=start.width, channels=start.channels),
            )
            while True:
                event = await read_until(
                    client, lambda t: AudioChunk.is_type(t) or AudioStop.is_type(t)
                )
                if AudioStop.is_type(event.type):
                    return
                yield AudioChunk.from_event(event).audio


def create_tts(config: TtsConfig, limits: LimitsConfig) -> TextToSpeech:
    if config.uri is not None:
        return WyomingTts(config, limits)
    return PiperTts(config, limits)
