"""The suite's configuration. Nothing here, nor in what it loads, imports a model runtime:
the fast tier (`make test-fast`) runs from the base install.

- tests/support/tiers.py: the rules that keep the two tiers (tests that need no model,
  tests marked `models`) apart.
- tests/support/model_fixtures.py: the fixtures backed by the embedded models (a server
  process, llama.cpp's OpenAI-compatible endpoint, Piper's voice, Whisper), for tests
  marked `models`.
- Shared helpers are in tests/support; test modules import from there, never from one
  another.
"""

import pytest

# The helpers' asserts explain themselves as the tests' own do.
pytest.register_assert_rewrite("tests.support")

# pytester: tests/test_tiers.py runs small suites of its own.
pytest_plugins = ["tests.support.model_fixtures", "tests.support.tiers", "pytester"]
