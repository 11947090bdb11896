"""`locara-wyoming satellites add|list|remove`: enrol the satellites that may open rooms.

The running server reads the enrolled satellites again whenever they change: one added
here can pair at once, one removed loses its session within a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .security.enrolment import EnrolmentError, SatelliteStore
from .security.identity import load_identity
from .security.server_security import ServerSecurity


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    satellites = commands.add_parser(
        "satellites", help="enrol, list and remove the satellites that may open rooms"
    )
    actions = satellites.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="enrol a satellite (or give it a new key) and print its pairing code"
    )
    add.add_argument("name", help="the satellite's name, as its rooms and Home Assistant show it")
    actions.add_parser("list", help="the enrolled satellites")
    remove = actions.add_parser("remove", help="remove a satellite; its session ends at once")
    remove.add_argument("name")
    for action in (add, remove, actions.choices["list"]):
        action.add_argument("--config", type=Path, help="TOML configuration file (its data_dir)")
        action.add_argument("--data-dir", help="the server's data directory")


def run(args: argparse.Namespace, data_dir: Path) -> int:
    try:
        if args.action == "add":
            return _add(data_dir, args.name)
        if args.action == "remove":
            return _remove(data_dir, args.name)
        return _list(data_dir)
    except EnrolmentError as error:
        print(f"locara-wyoming satellites: {error}", file=sys.stderr)
        return 2


def _add(data_dir: Path, name: str) -> int:
    security = ServerSecurity.load(data_dir, load_identity(data_dir))
    code = security.enrol(name)
    print(
        f"Enrolled {code.name}. On the satellite, run once:\n\n"
        f"    locara-satellite --pair {code.encode()}\n\n"
        "The code holds the satellite's key: use it once, keep it nowhere else.",
    )
    return 0


def _list(data_dir: Path) -> int:
    enrolled = list(SatelliteStore(data_dir))
    if not enrolled:
        print("No satellite is enrolled (`locara-wyoming satellites add NAME`).")
    for satellite in enrolled:
        print(f"{satellite.name}\tenrolled {satellite.added}")
    return 0


def _remove(data_dir: Path, name: str) -> int:
    if not SatelliteStore(data_dir).remove(name):
        print(f"locara-wyoming satellites: no satellite named {name!r} is enrolled",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"Removed {name.strip()}; a running server ends its session within a second.")
    return 0
