"""The suite's two tiers: tests that need no model, and tests marked `models`.

A pytest plugin (tests/conftest.py loads it). Its rules:

- A test that needs more than the base install carries `@pytest.mark.models`: the
  embedded models, their runtimes, or what `scripts/setup.sh test` makes besides them
  (the satellite's and Moshi's environments, llama.cpp's server). Running
  `locara-wyoming` counts: its command line imports faster-whisper as it starts. A
  module whose every test is such says it once, `pytestmark = pytest.mark.models`, and
  may then import model runtimes at its top: a run whose `-m` leaves the marker out
  (the fast tier's `-m "not models"`) does not even import it.
- A test that asks for a model fixture (`model_fixtures.MODEL_FIXTURES`) without the
  marker stops the run as it starts, named.
- In a run with no test marked `models` (the fast tier), importing a model runtime or
  starting a server fails the test that does it, and a module collected for that run
  that imports a model runtime at its top stops the run, named. So from the full
  install the fast tier fails where it would fail from the base install, instead of
  quietly loading a model.
"""

from __future__ import annotations

import ast
import importlib.abc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from locara_wyoming.bench.server_process import ServerProcess

from .model_fixtures import MODEL_FIXTURES

MODELS = "models"
MODEL_RUNTIMES = frozenset(
    {"faster_whisper", "ctranslate2", "piper", "onnxruntime", "llama_cpp", "openai", "torch",
     "moshi", "moshi_mlx", "mlx", "pymicro_wakeword", "pymicro_vad"}
)  # fmt: skip
"""Top-level packages that load or run a model: none of them is in the base install."""


class ModelImports(importlib.abc.MetaPathFinder):
    """Sees every first import of a model runtime: notes which test modules were being
    imported then, or, once `refusing`, refuses it."""

    def __init__(self) -> None:
        self.importers: dict[str, set[Path]] = {}
        self.refusing = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        runtime = fullname.partition(".")[0]
        if runtime not in MODEL_RUNTIMES:
            return None
        if self.refusing:
            raise ModuleNotFoundError(
                f"{runtime} loads a model, and this run has no test marked `{MODELS}`: "
                f"mark the test that needs it @pytest.mark.{MODELS}",
                name=fullname,
            )
        frame = sys._getframe(1)
        while frame is not None:
            file = Path(frame.f_code.co_filename)
            if file.name.startswith("test_"):
                self.importers.setdefault(runtime, set()).add(file)
            frame = frame.f_back  # type: ignore[assignment]
        return None


IMPORTS = pytest.StashKey[ModelImports]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[IMPORTS] = ModelImports()
    sys.meta_path.insert(0, config.stash[IMPORTS])


def pytest_unconfigure(config: pytest.Config) -> None:
    imports = config.stash.get(IMPORTS, None)
    if imports in sys.meta_path:
        sys.meta_path.remove(imports)


def leaves_out_models(config: pytest.Config) -> bool:
    """Whether the `-m` expression leaves out a test whose one mark is `models`."""
    expression = config.getoption("markexpr") or ""
    if not expression:
        return False
    from _pytest.mark.expression import Expression  # what `-m` itself is evaluated with

    return not Expression.compile(expression).evaluate(lambda name, **_: name == MODELS)


def marked_whole(path: Path) -> bool:
    """Whether a test module says `pytestmark = …models…` at its top level."""
    try:
        module = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return False  # collected as usual, to report the error
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and f"mark.{MODELS}" in ast.unparse(node.value)
        for node in module.body
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if (
        collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
        and leaves_out_models(config)
        and marked_whole(collection_path)
    ):
        return True
    return None  # let pytest decide


def pytest_collection_finish(session: pytest.Session) -> None:
    imports = session.config.stash[IMPORTS]
    unmarked = [
        f"  {item.nodeid} uses {', '.join(sorted(MODEL_FIXTURES & set(item.fixturenames)))}"
        for item in session.items
        if MODEL_FIXTURES & set(item.fixturenames) and item.get_closest_marker(MODELS) is None
    ]
    model_free = not any(item.get_closest_marker(MODELS) for item in session.items)
    selected = {item.path for item in session.items}
    at_import = [
        f"  {os.path.relpath(file, session.config.rootpath)} imports {runtime} at its top"
        for runtime, files in sorted(imports.importers.items())
        for file in sorted(files & selected)
    ]
    if unmarked or (model_free and at_import):
        raise pytest.UsageError(
            f"tests that need models must be marked @pytest.mark.{MODELS} (a module whose "
            f"every test does: pytestmark = pytest.mark.{MODELS}):\n"
            + "\n".join(unmarked + (at_import if model_free else []))
        )
    if model_free:
        imports.refusing = True
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setattr(ServerProcess, "start", _refuse_server)
        session.config.add_cleanup(monkeypatch.undo)


async def _refuse_server(self: ServerProcess, timeout_s: float = 300.0) -> None:
    pytest.fail(
        f"this starts a server, which loads every model, and this run has no test marked "
        f"`{MODELS}`: mark the test @pytest.mark.{MODELS}",
        pytrace=False,
    )
