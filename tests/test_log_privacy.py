"""What people say and what the assistant answers are in the server's log only when it
is asked for with `--debug`, and the personas' prompts are not at the default level
either: logs end up in journals, log collectors and bug reports."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from locara_wyoming.bench.log_lines import LogLines
from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.config import parse_config

from .support.rooms import satellite
from .support.servers import TEST_CONFIG
from .support.speech import Speech

pytestmark = pytest.mark.models

QUESTION = "What is the capital of France?"


async def one_turn(server: ServerProcess, speech: Speech, name: str) -> list[str]:
    """What the server heard and answered in a room, once the log has everything the turn
    could have logged (the session's end comes after it)."""
    async with satellite(server, name) as room:
        said = await room.say(speech.at_16k(QUESTION))
        heard = (await room.wait_for("transcript", said.voiced_end)).event.data["text"]
        answered = (await room.wait_for("handled", said.voiced_end, 120)).event.data["text"]
    await server.log.wait_for(f"({name}) ended")
    assert heard.strip() and answered.strip(), (heard, answered)  # "" is in every line
    return [heard, answered]


def lines_with(log: LogLines, text: str) -> list[str]:
    """The lines of the log that hold `text`, as it is or as Python quotes it (`%r`)."""
    return [line for line in log if text in line or repr(text) in line]


async def test_what_is_said_is_in_the_log_only_at_debug(
    server: ServerProcess, speech: Speech, tmp_path: Path
) -> None:
    said = await one_turn(server, speech, "quiet-room")
    prompts = [p.system_prompt for p in parse_config(tomllib.loads(TEST_CONFIG)).personas]
    for text in [*said, *prompts]:
        leaked = lines_with(server.log, text)
        assert not leaked, f"{text!r} is in the log at the default level: {leaked}"

    async with ServerProcess(tmp_path, TEST_CONFIG, ["--no-zeroconf", "--debug"]) as debugged:
        for text in await one_turn(debugged, speech, "debugged-room"):
            assert lines_with(debugged.log, text), f"{text!r} is not in the log at --debug"
