"""The configuration the tests' servers run with, and a server that must fail to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Zeroconf stays on loopback: tests never send multicast onto the machine's network.
TEST_CONFIG = """
[server]
zeroconf_interfaces = ["127.0.0.1"]

[llm]
temperature = 0.0

# Most tests are about other things than enrolment: their rooms are not enrolled, so
# they run in open mode (no home control). tests/test_trust.py starts servers without it.
[security]
open_satellites = true

[limits]
max_connections = 12
reserved_connections = 2
max_audio_seconds = 20
max_payload_bytes = 262144
max_data_bytes = 65536

[[personas]]
name = "locara"

[[personas]]
name = "storyteller"
system_prompt = "You are a storyteller. Tell long stories of many sentences."

[[rooms]]
satellite = "story-room"
persona = "storyteller"
"""

MODEL_ALIAS = "smollm2-test"
"""The name llama.cpp's OpenAI-compatible server (`openai_endpoint`) serves the model by."""


def serve_expecting_failure(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "locara.toml"
    path.write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "locara_wyoming", "serve", "--config", str(path), "--no-zeroconf",
         "--uri", "tcp://127.0.0.1:1", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
