"""`locara-satellite`: run a room satellite. Flags override the TOML file given by --config.

`locara-satellite --pair CODE` pairs it with a server instead, and exits: the code is kept
in the data directory (credential.py), and from then on the satellite connects only to
that server, as the name it was enrolled under.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from locara_wyoming.audio_format import AudioFormatError, PcmFormat
from locara_wyoming.client.session import AudioSource
from locara_wyoming.config import ConfigError

from .app import Satellite
from .audio import Speaker
from .audio.commands import CommandError, CommandMicrophone, CommandSpeaker
from .audio.sound_card import SoundCardMicrophone, SoundCardSpeaker, SoundDeviceError, list_devices
from .audio.wav_files import AudioFileError, WavFileMicrophone, WavFileSpeaker
from .config import DEFAULT_DATA_DIR, WAKE_WORDS, Activation, SatelliteConfig, load_satellite_config
from .credential import (
    CredentialError,
    decode_pairing_code,
    load_credential,
    named_by,
    store_credential,
)
from .discovery import ServerFinder

_LOGGER = logging.getLogger("locara-satellite")

# flag destination → configuration key
_OVERRIDES = {
    "name": "name",
    "area": "area",
    "server": "server",
    "server_name": "server_name",
    "data_dir": "data_dir",
    "mic_device": "audio.mic_device",
    "snd_device": "audio.speaker_device",
    "volume": "audio.volume",
    "preroll_ms": "audio.preroll_ms",
    "echo_gate": "audio.echo_gate",
    "activation": "activation.mode",
    "wake_word": "activation.wake_word",
    "idle_s": "activation.idle_s",
    "vad_threshold": "activation.vad_threshold",
    "send_silence": "activation.send_silence",
    "wake_sound": "activation.wake_sound",
    "done_sound": "activation.done_sound",
    "timer_sound": "timers.sound",
}


def _device(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locara-satellite", description="A Locara room satellite: microphone and speaker."
    )
    parser.add_argument("--config", type=Path, help="TOML settings (see config/satellite.toml)")
    parser.add_argument("--name", help="this satellite's name (default: the host name)")
    parser.add_argument("--area", help="the room, e.g. Kitchen")
    parser.add_argument("--server", help="tcp://HOST:PORT; default: find one by zeroconf")
    parser.add_argument("--server-name", help="with several servers, the one named like this")
    parser.add_argument("--discovery-interface", action="append", help=argparse.SUPPRESS)
    parser.add_argument(
        "--pair", metavar="CODE",
        help="pair with a server: keep the code `locara-wyoming satellites add NAME` printed "
        "there, and exit",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, help=f"where the pairing is kept ({DEFAULT_DATA_DIR})"
    )
    audio = parser.add_argument_group("audio")
    audio.add_argument("--list-devices", action="store_true", help="list sound devices and exit")
    audio.add_argument("--mic-device", type=_device, help="input device: index or name")
    audio.add_argument("--snd-device", type=_device, help="output device: index or name")
    audio.add_argument("--mic-file", type=Path, help="a WAV file as the microphone; exit after it")
    audio.add_argument("--snd-file", type=Path, help="play into this WAV file instead")
    audio.add_argument("--snd-file-rate", type=int, default=22050, help="its rate (22050)")
    audio.add_argument("--mic-command", help="a program writing raw PCM, e.g. arecord -r 16000 …")
    audio.add_argument("--mic-command-rate", type=int, default=16000)
    audio.add_argument("--mic-command-width", type=int, default=2)
    audio.add_argument("--mic-command-channels", type=int, default=1)
    audio.add_argument("--snd-command", help="a program reading raw 16-bit PCM, e.g. aplay …")
    audio.add_argument("--snd-command-rate", type=int, default=22050)
    audio.add_argument("--snd-command-channels", type=int, default=1)
    audio.add_argument("--volume", type=float, help="speaker volume, 1.0 as is")
    audio.add_argument("--preroll-ms", type=float, help="reply audio buffered before playing")
    audio.add_argument("--no-echo-gate", dest="echo_gate", action="store_false", default=None)
    listening = parser.add_argument_group("activation")
    listening.add_argument("--activation", choices=[mode.value for mode in Activation])
    listening.add_argument("--wake-word", choices=WAKE_WORDS)
    listening.add_argument("--idle-s", type=float, help="close a conversation after this silence")
    listening.add_argument("--vad-threshold", type=float)
    listening.add_argument(
        "--no-send-silence", dest="send_silence", action="store_false", default=None,
        help="send only speech, not the silence between",
    )  # fmt: skip
    listening.add_argument("--wake-sound", type=Path, help="a WAV played when a conversation opens")
    listening.add_argument("--done-sound", type=Path, help="a WAV played when it closes")
    listening.add_argument(
        "--timer-sound", type=Path, help="a WAV played when a timer finishes (ours by default)"
    )
    parser.add_argument("--debug", action="store_true")
    return parser


def _microphone(args: argparse.Namespace, config: SatelliteConfig) -> AudioSource:
    if args.mic_file is not None:
        return WavFileMicrophone(args.mic_file)
    if args.mic_command is not None:
        audio = PcmFormat(args.mic_command_rate, args.mic_command_width, args.mic_command_channels)
        return CommandMicrophone(args.mic_command, audio)
    return SoundCardMicrophone(config.audio.mic_device)


def _speaker(args: argparse.Namespace, config: SatelliteConfig) -> Speaker:
    settings = config.audio
    if args.snd_file is not None:
        return WavFileSpeaker(
            args.snd_file, args.snd_file_rate, settings.preroll_ms, settings.volume
        )
    if args.snd_command is not None:
        return CommandSpeaker(
            args.snd_command, args.snd_command_rate, args.snd_command_channels,
            settings.preroll_ms, settings.volume,
        )  # fmt: skip
    return SoundCardSpeaker(settings.speaker_device, settings.preroll_ms, settings.volume)


def _pair(code_text: str, config: SatelliteConfig) -> int:
    code = decode_pairing_code(code_text)
    named_by(code, config)  # a name the server would refuse: before anything is kept
    path = store_credential(config.data_dir, code)
    print(
        f"Paired as {code.name} with server {code.server_id}, kept in {path}.\n"
        "From now on this satellite connects only to that server, once it has proved "
        "itself. Start the satellite (or restart it, if it runs)."
    )
    return 0


async def _run(satellite: Satellite) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for stop in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop, task.cancel)
    loop.add_signal_handler(signal.SIGUSR1, satellite.conversation.open, "push-to-talk")
    loop.add_signal_handler(signal.SIGUSR2, satellite.conversation.close, "push-to-talk ended")
    with contextlib.suppress(asyncio.CancelledError):
        await satellite.run()
    _LOGGER.info("Stopped")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.list_devices:
            print(list_devices())
            return 0
        overrides: dict[str, Any] = {
            key: getattr(args, dest)
            for dest, key in _OVERRIDES.items()
            if getattr(args, dest) is not None
        }
        config = load_satellite_config(args.config, overrides)
        if args.pair is not None:
            return _pair(args.pair, config)
        credential = load_credential(config.data_dir)
        if credential is not None:
            config = named_by(credential, config)
        server_id = credential.server_id if credential is not None else None
        satellite = Satellite(
            config,
            _microphone(args, config),
            _speaker(args, config),
            ServerFinder(config.server_name, args.discovery_interface, server_id),
            credential,
        )
    except (
        ConfigError, CredentialError, AudioFileError, AudioFormatError, SoundDeviceError,
        CommandError,
    ) as error:  # fmt: skip
        print(f"locara-satellite: {error}", file=sys.stderr)
        return 2
    asyncio.run(_run(satellite))
    return 0
