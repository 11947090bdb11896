"""Where an end-to-end model's files are: a local directory, or a Hugging Face
repository in the local cache. Nothing is downloaded unless the user asks for it
(`locara-wyoming models fetch`, or `allow_download = true`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import ConfigError, EndToEndModelConfig, LocaraConfig
from ...embedded_models import ModelMissingError

KNOWN_MODELS = {
    "moshi-moshiko": "kyutai/moshiko-pytorch-bf16",
    "moshi-moshika": "kyutai/moshika-pytorch-bf16",
    "moshi-mlx-moshiko": "kyutai/moshiko-mlx-q4",
    "moshi-mlx-moshika": "kyutai/moshika-mlx-q4",
    "personaplex-7b": "nvidia/personaplex-7b-v1",
}
"""Model ids that work with no `[[models]]` entry, and the repository each reads."""


class WeightsMissingError(ModelMissingError):
    """The model's files are not here; the message says how to get them."""


def model_entry(config: LocaraConfig, model_id: str) -> EndToEndModelConfig:
    """The `[[models]]` entry for `model_id`, or the defaults of a known id."""
    for entry in config.models:
        if entry.id == model_id:
            return entry
    if model_id in KNOWN_MODELS:
        return EndToEndModelConfig(id=model_id, repo=KNOWN_MODELS[model_id])
    known = ", ".join(sorted(KNOWN_MODELS))
    raise ConfigError(
        f"backend {model_id!r} has no [[models]] entry saying where its weights are "
        f"(ids that need none: {known})"
    )


@dataclass(frozen=True)
class ModelLocation:
    model_id: str
    source: str
    """`path DIR` or `repo NAME`, for messages and `models list`."""
    directory: Path | None
    """Where the files are; None when they are not here."""


def locate(entry: EndToEndModelConfig, download: bool = False) -> ModelLocation:
    if entry.path is not None:
        path = Path(entry.path).expanduser()
        return ModelLocation(entry.id, f"path {path}", path if path.is_dir() else None)
    repo = entry.repo or KNOWN_MODELS.get(entry.id)
    if repo is None:
        raise ConfigError(f"models: {entry.id!r} needs repo or path")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        directory = snapshot_download(repo, local_files_only=not download)
    except LocalEntryNotFoundError:
        return ModelLocation(entry.id, f"repo {repo}", None)
    return ModelLocation(entry.id, f"repo {repo}", Path(directory))


def model_directory(entry: EndToEndModelConfig) -> Path:
    """The model's directory, fetched first if the entry allows it; else a clear error."""
    location = locate(entry, download=entry.allow_download)
    if location.directory is None:
        raise WeightsMissingError(
            f"{entry.id}: no weights at {location.source} (looked in the local Hugging Face "
            f"cache, HF_HOME). Fetch them with `locara-wyoming models fetch {entry.id}`, "
            "or set allow_download = true in its [[models]] entry"
        )
    return location.directory
