"""An engine process: one engine, driven by the server over stdin and stdout.

    python -m locara_wyoming.engines --engine mlx --model-dir DIR

It runs in the model's own environment (which needs `wyoming`, numpy and this
package installed without extras); see `messages.py` for what goes over the pipes.
Logs go to stderr, which the server passes into its own log.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import BinaryIO

from wyoming.error import Error
from wyoming.event import Event, read_event, write_event

from . import messages
from .engine import Engine

_LOGGER = logging.getLogger("locara_wyoming.helper")
ENGINES = ("moshi", "mlx", "personaplex")


def load_engine(name: str, model_dir: Path, slots: int, device: str, threads: int) -> Engine:
    if name == "mlx":
        from .mlx_engine import MlxEngine

        return MlxEngine(model_dir, slots)
    if name == "personaplex":
        from .personaplex_engine import PersonaPlexEngine

        return PersonaPlexEngine(model_dir, slots, device, threads)
    from .torch_engine import TorchMoshiEngine

    return TorchMoshiEngine(model_dir, slots, device, threads)


def serve(engine: Engine, name: str, reader: BinaryIO, writer: BinaryIO) -> None:
    write_event(
        messages.ready_event(name, engine.sample_rate, engine.frame_samples, engine.slots), writer
    )
    while (event := read_event(reader)) is not None:
        if event.type == messages.RESET:
            slot, persona = messages.read_reset_request(event)
            tokens = engine.reset(slot, persona)
            write_event(Event(messages.RESET, {"slot": slot, "prompt_tokens": tokens}), writer)
        elif event.type == messages.STEP:
            started = time.perf_counter()
            outputs = engine.step(messages.read_step_request(event))
            compute_ms = 1000 * (time.perf_counter() - started)
            write_event(messages.step_answer(outputs, compute_ms), writer)
        else:
            raise ValueError(f"unexpected event {event.type!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m locara_wyoming.engines")
    parser.add_argument("--engine", choices=ENGINES, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    writer = sys.stdout.buffer
    sys.stdout = sys.stderr  # a library's print() must not corrupt the messages
    try:
        engine = load_engine(args.engine, args.model_dir, args.slots, args.device, args.threads)
        serve(engine, args.engine, sys.stdin.buffer, writer)
    except Exception as error:
        _LOGGER.exception("helper failed")
        write_event(
            Error(text=f"{type(error).__name__}: {error}", code="helper-failed").event(), writer
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
