"""The fast tier fails loudly, from any install, when a test needs a model it has not
declared: tests/support/tiers.py, checked on small suites of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = ("-p", "tests.support.model_fixtures", "-p", "tests.support.tiers", "-m", "not models")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
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

            def test_whisper():
                import faster_whisper

            async def test_server(tmp_path):
                async with ServerProcess(tmp_path, ""):
                    pass

            def test_plain():
                pass
        """,
        test_marked="""
            import pytest
            import piper

            pytestmark = pytest.mark.models

            def test_speaks():
                pass
        """,
    )
    result = suite.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*faster_whisper*", "*mark the test*@pytest.mark.models*"])


def test_a_model_fixture_or_a_model_import_on_an_unmarked_test_stops_the_run(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(
        test_fixture="def test_listens(speech):\n    pass\n",
        test_top="import piper\n\ndef test_speaks():\n    pass\n",
    )
    result = suite.runpytest_subprocess(*FAST)
    assert result.ret != pytest.ExitCode.OK
    # From the base install piper is absent: its import fails the collection anyway.
    result.stderr.fnmatch_lines(["*must be marked @pytest.mark.models*"])
    assert "test_listens uses piper_voice, speech" in str(result.stderr)
    output = f"{result.stdout}\n{result.stderr}"
    assert "test_top.py imports piper at its top" in output or "No module named 'piper'" in output
