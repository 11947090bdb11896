"""`locara-wyoming models`: which end-to-end models are configured and whether their
weights are here; fetch them on request (with the hub's progress bars); build a tiny
random-weight Moshi to try the backend on a CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from .backends.end_to_end.weights import KNOWN_MODELS, locate, model_entry
from .backends.registry import configured_backends
from .config import END_TO_END_PREFIXES, ConfigError, LocaraConfig, load_config


def _model_ids(config: LocaraConfig) -> list[str]:
    used = [m for m in configured_backends(config).values() if m.startswith(END_TO_END_PREFIXES)]
    return list(dict.fromkeys([*used, *(m.id for m in config.models), *KNOWN_MODELS]))


def list_models(config: LocaraConfig) -> list[str]:
    used = set(configured_backends(config).values())
    lines = []
    for model_id in _model_ids(config):
        location = locate(model_entry(config, model_id))
        state = f"here: {location.directory}" if location.directory else "missing"
        mark = "*" if model_id in used else " "
        lines.append(f"{mark} {model_id:22} {location.source:40} {state}")
    return lines


class FetchError(Exception):
    pass


def fetch_model(config: LocaraConfig, model_id: str) -> Path:
    entry = model_entry(config, model_id)
    if entry.path is not None:
        raise ConfigError(f"{model_id} is read from the local path {entry.path}: nothing to fetch")
    repo = entry.repo or KNOWN_MODELS[model_id]
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo))  # shows the hub's progress bars
    except Exception as error:  # the hub's errors have no common base but Exception
        raise FetchError(f"cannot fetch {repo}: {error}") from None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser("models", help="end-to-end models: list, fetch, make-tiny")
    actions = models.add_subparsers(dest="models", required=True)
    listing = actions.add_parser("list", help="configured and known models, and their weights")
    fetch = actions.add_parser("fetch", help="download a model's weights into the local cache")
    fetch.add_argument("model_id")
    for action in (listing, fetch):
        action.add_argument("--config", type=Path, help="TOML configuration file")
    tiny = actions.add_parser("make-tiny", help="write a tiny random-weight Moshi (PyTorch)")
    tiny.add_argument("directory", type=Path)


def run(args: argparse.Namespace) -> int:
    if args.models == "make-tiny":
        from .engines.tiny_moshi import make_tiny_moshi

        print(f"Tiny random-weight Moshi written to {make_tiny_moshi(args.directory)}")
        return 0
    config = load_config(args.config)
    if args.models == "list":
        print("  model id               source                                   weights")
        print("\n".join(list_models(config)))
        print("(* = used by the configuration)")
        return 0
    print(f"Fetching {args.model_id}…")
    print(f"{args.model_id}: ready in {fetch_model(config, args.model_id)}")
    return 0
