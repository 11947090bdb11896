"""`locara-wyoming`: serve, and benchmark."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from . import models_command, satellites_command
from .bench.options import SOAK_WARM_UP_MIN, VoiceBenchOptions
from .config import ConfigError, LocaraConfig, load_config
from .embedded_models import ModelMissingError
from .stages.remote import RemoteServiceError
from .stages.tts import VoiceNotFoundError

EXIT_CONFIG = 2
EXIT_MODELS = 3


def _serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the Wyoming server")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument(
        "--uri", help="tcp://HOST:PORT, unix://PATH or stdio:// (default tcp://0.0.0.0:10700)"
    )
    serve.add_argument(
        "--zeroconf",
        nargs="?",
        const="",
        metavar="NAME",
        help="advertise over zeroconf, optionally under NAME (on by default for tcp://)",
    )
    serve.add_argument("--no-zeroconf", action="store_true", help="do not advertise over zeroconf")
    serve.add_argument("--data-dir", help="where the server keeps its state")
    serve.add_argument(
        "--open-satellites",
        action="store_true",
        help="admit satellites that are not enrolled, without home control "
        "(security.open_satellites; to try Locara out)",
    )
    serve.add_argument("--debug", action="store_true", help="log debug messages")


def _bench_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure the server").add_subparsers(
        dest="bench", required=True
    )
    services = bench.add_parser("services", help="asr, tts and handle latency, and memory")
    services.add_argument(
        "--runs", type=int, default=5, help="requests per measurement (default 5)"
    )
    voice = bench.add_parser(
        "voice", help="voice-to-voice latency, barge-in and load of real voice sessions"
    )
    defaults = VoiceBenchOptions()
    voice.add_argument(
        "--turns", type=int, default=defaults.turns, help="turns of the single session"
    )
    voice.add_argument(
        "--bargeins", type=int, default=defaults.bargeins, help="interrupted story rounds"
    )
    voice.add_argument(
        "--sessions", type=int, default=defaults.sessions, help="sessions talking at once"
    )
    voice.add_argument("--turns-per-session", type=int, default=defaults.turns_per_session)
    voice.add_argument(
        "--idle-seconds",
        type=float,
        default=defaults.idle_seconds,
        help="length of each idle-CPU window",
    )
    voice.add_argument(
        "--echo-gain",
        type=float,
        default=defaults.echo_gain,
        help="how loud the speaker is at the microphone (0 to 1; default %(default)s)",
    )
    voice.add_argument(
        "--compare-stock",
        action="store_true",
        help="also measure wyoming-faster-whisper → handle → wyoming-piper (needs [bench])",
    )
    voice.add_argument("--utterances", type=Path, help="a folder of .wav questions to ask")
    voice.add_argument(
        "--paused-turns",
        type=int,
        default=defaults.paused_turns,
        help="turns of the paused set, people who pause mid-sentence (default %(default)s: "
        "the whole set once; 0: none)",
    )
    voice.add_argument(
        "--answer-timeout",
        type=float,
        default=defaults.answer_timeout_s,
        help="seconds a turn waits for its answer before it counts as timed out "
        "(default %(default)s)",
    )
    soak = bench.add_parser("soak", help="rooms in continuous conversation: failures and leaks")
    soak.add_argument("--minutes", type=float, default=60.0, help="how long (default 60)")
    soak.add_argument("--sessions", type=int, default=4, help="rooms at once (default 4)")
    soak.add_argument(
        "--warm-up-minutes",
        type=float,
        default=SOAK_WARM_UP_MIN,
        help=f"minutes of the script before the first reading (default {SOAK_WARM_UP_MIN:g})",
    )
    stalled = bench.add_parser(
        "stalled", help="what a client that stops reading costs: memory held, then dropped"
    )
    stalled.add_argument("--rounds", type=int, default=5, help="stalled clients of each kind")
    moshi = bench.add_parser("moshi", help="an end-to-end model's time per 80 ms frame")
    moshi.add_argument("--tiny", action="store_true", help="a tiny random-weight Moshi on the CPU")
    moshi.add_argument(
        "--sessions", default="1,2,4", help="rooms at once, one run each (default 1,2,4)"
    )
    moshi.add_argument("--seconds", type=float, default=20.0, help="audio per room and run")
    satellite = bench.add_parser(
        "satellite", help="the room satellite's memory, CPU, underruns and flush-to-silence"
    )
    satellite.add_argument("--rounds", type=int, default=5, help="stories interrupted")
    satellite.add_argument(
        "--satellite-python", type=Path, help="the satellite's Python (.venv-satellite's)"
    )
    satellite.add_argument("--json", type=Path, help="also write the results to this file")
    for command in (services, voice, soak, stalled, moshi):
        command.add_argument("--config", type=Path, help="server configuration to measure")
        command.add_argument("--json", type=Path, help="also write the results to this file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locara-wyoming", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_parser(commands)
    _bench_parser(commands)
    models_command.add_parser(commands)
    token = commands.add_parser(
        "token", help="print the control token Home Assistant's Locara integration asks for"
    )
    token.add_argument("--config", type=Path, help="TOML configuration file (its data_dir)")
    token.add_argument("--data-dir", help="the server's data directory")
    satellites_command.add_parser(commands)
    return parser


def apply_serve_flags(config: LocaraConfig, args: argparse.Namespace) -> LocaraConfig:
    """Command-line flags override the file's `[server]` section (and `--open-satellites`
    its `[security]`)."""
    server: dict[str, object] = {}
    if args.uri:
        server["uri"] = args.uri
    if args.zeroconf is not None:
        server["zeroconf"] = True
        if args.zeroconf:
            server["zeroconf_name"] = args.zeroconf
    if args.no_zeroconf:
        server["zeroconf"] = False
    if args.data_dir:
        server["data_dir"] = args.data_dir
    data = config.model_dump()
    data["server"].update(server)
    if args.open_satellites:
        data["security"]["open_satellites"] = True
    return LocaraConfig.model_validate(data)


def _serve(args: argparse.Namespace) -> int:
    from .backends.end_to_end.runner import EngineFailedError
    from .backends.registry import check_configured_backends
    from .server import LocaraServer

    try:
        config = apply_serve_flags(load_config(args.config), args)
        check_configured_backends(config)
        server = LocaraServer(config)
    except ConfigError as error:
        print(f"locara-wyoming: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as error:  # a --uri that wyoming cannot serve
        print(f"locara-wyoming: --uri {args.uri!r}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(server.run())
    except (
        ModelMissingError, FileNotFoundError, VoiceNotFoundError, RemoteServiceError,
        EngineFailedError,
    ) as error:  # fmt: skip
        logging.getLogger("locara_wyoming").error("Cannot start: %s", error)
        return EXIT_MODELS
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.bench == "voice":
        from .bench.voice import run_voice_bench

        options = VoiceBenchOptions(
            turns=args.turns,
            bargeins=args.bargeins,
            sessions=args.sessions,
            turns_per_session=args.turns_per_session,
            idle_seconds=args.idle_seconds,
            echo_gain=args.echo_gain,
            compare_stock=args.compare_stock,
            utterances=args.utterances,
            paused_turns=args.paused_turns,
            answer_timeout_s=args.answer_timeout,
        )
        return run_voice_bench(args.config, options, args.json)
    if args.bench == "soak":
        from .bench.soak import run_soak_bench

        return run_soak_bench(
            args.config, args.minutes, args.sessions, args.warm_up_minutes, args.json
        )
    if args.bench == "stalled":
        from .bench.stalled import run_stalled_bench

        return run_stalled_bench(args.config, args.rounds, args.json)
    if args.bench == "moshi":
        from .bench.moshi import run_moshi_bench

        try:
            sessions = [int(n) for n in args.sessions.split(",")]
        except ValueError:
            print(f"locara-wyoming bench moshi: --sessions {args.sessions!r}: "
                  "numbers separated by commas", file=sys.stderr)  # fmt: skip
            return EXIT_CONFIG
        return run_moshi_bench(args.config, args.tiny, sessions, args.seconds, args.json)
    if args.bench == "satellite":
        from .bench.satellite import run_satellite_bench

        return run_satellite_bench(args.rounds, args.satellite_python, args.json)
    from .bench.services import run_services_bench

    return run_services_bench(config_path=args.config, runs=args.runs, json_path=args.json)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A benchmark's progress lines are its log; the clients it runs stay quiet.
    quiet = logging.WARNING if args.command == "bench" else logging.INFO
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "debug", False) else quiet,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "serve":
        return _serve(args)
    if args.command == "models":
        return _models(args)
    if args.command in ("token", "satellites"):
        return _data_command(args)
    return _bench(args)


def _data_command(args: argparse.Namespace) -> int:
    """`token` and `satellites`: what is kept in the server's data directory."""
    from .security.identity import load_identity

    try:
        data_dir = Path(args.data_dir or load_config(args.config).server.data_dir).expanduser()
    except ConfigError as error:
        print(f"locara-wyoming: {error}", file=sys.stderr)
        return EXIT_CONFIG
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "satellites":
        return satellites_command.run(args, data_dir)
    print(load_identity(data_dir).token)
    return 0


def _models(args: argparse.Namespace) -> int:
    try:
        return models_command.run(args)
    except ConfigError as error:
        print(f"locara-wyoming: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except models_command.FetchError as error:
        print(f"locara-wyoming: {error}", file=sys.stderr)
        return EXIT_MODELS
