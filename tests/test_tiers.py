"""The fast tier fails loudly, from any install, when a test needs a model it has not
declared: tests/support/tiers.py, checked on small suites of its own.

The first suite runs in this process and imports `mlx`: a model runtime this process never
loads (it lives in .venv-mlx), so that the import reaches the guard, whatever the rest of
the run loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = ("-p", "tests.support.model_fixtures", "-p", "tests.support.tiers", "-m", "not models")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        "[pytest]\nmarkers = models: needs models\nasyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    return pytester


def test_a_test_that_loads_a_model_unmarked_fails_and_a_marked_module_is_not_imported(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(
        test_unmarked="""
            from locara_wyoming.bench.server_process import ServerProcess

            def test_imports_a_runtime():
                import mlx

            async def test_starts_a_server(tmp_path):
                async with ServerProcess(tmp_path, ""):
                    pass

            def test_needs_nothing():
                pass
        """,
        test_marked="""
            import pytest

            raise RuntimeError("a module marked `models` was imported")

            pytestmark = pytest.mark.models
        """,
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*mlx loads a model, and this run has no test marked `models`*",
            "*this starts a server*mark the test @pytest.mark.models",
        ]
    )


def test_a_model_fixture_or_a_model_import_on_an_unmarked_test_stops_the_run(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a process of its own, where piper is not loaded yet, if it is installed at all."""
    suite.makepyfile(
        test_fixture="def test_listens(speech):\n    pass\n",
        test_top="import piper\n\ndef test_speaks():\n    pass\n",
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    )
    result = suite.runpytest_subprocess(*FAST)
    assert result.ret != pytest.ExitCode.OK
    errors = str(result.stderr)
    assert "must be marked @pytest.mark.models" in errors
    assert "test_fixture.py::test_listens uses piper_voice, speech" in errors
    # From the full install it is named; from the base one, piper is not there to import.
    output = f"{result.stdout}\n{errors}"
    assert "test_top.py imports piper at its top" in output or "No module named 'piper'" in output
