"""The import floors: every module imports only modules on its own floor or below.

From the ground up: image files (0: formats and the one codec), the generative model (1), the guide (2), training (3), the `virnet`
library (4), the benchmarks (5) and the command line (6: the `cli` package, and every
``__main__.py``: `python -m virnet` and `python -m training` are entry points that nothing
imports, so they stand on the top floor wherever their folder is). Every import is read
from the source with `ast`, function-level (lazy) imports and
``importlib.import_module("...")`` included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Module prefix -> floor; the longest matching prefix wins.
FLOORS = {"imagefiles": 0, "generative": 1, "guides": 2, "training": 3, "virnet": 4, "benchmarks": 5, "cli": 6}
FLOOR_NAMES = {0: "image files", 1: "generative", 2: "guides", 3: "training", 4: "virnet library", 5: "benchmarks", 6: "command line"}
PACKAGES = sorted({prefix.split(".")[0] for prefix in FLOORS})


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor_of(module: str) -> int | None:
    """The floor of a project module, None for anything outside the project."""
    if module.endswith("__main__"):
        return max(FLOORS.values())
    matches = [prefix for prefix in FLOORS if module == prefix or module.startswith(prefix + ".")]
    return FLOORS[max(matches, key=len)] if matches else None


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, at any depth, relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module package.module.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def back_arrows(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of `source` (the text of `module`) that run to a higher floor."""
    own = floor_of(module)
    arrows = []
    for line, target in imported_modules(source, module, is_package):
        target_floor = floor_of(target)
        if target_floor is not None and target_floor > own:
            arrows.append(f"{module}:{line} imports {target} ({FLOOR_NAMES[target_floor]}, above {FLOOR_NAMES[own]})")
    return arrows


SOURCES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_every_source_file_has_a_floor():
    assert len(SOURCES) > 60
    assert [p for p in SOURCES if floor_of(module_name(p)) is None] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_up_a_floor(path):
    assert back_arrows(path.read_text(), module_name(path), path.name == "__init__.py") == []


@pytest.mark.parametrize(
    ("module", "source", "found"),
    [
        ("training.loop", "from virnet.models import WEIGHTS_FORMAT\n", "training.loop:1 imports virnet.models.WEIGHTS_FORMAT"),
        ("virnet.models", "def load():\n    import cli\n", "virnet.models:2 imports cli"),
        ("virnet.api", "from benchmarks import metrics\n", "virnet.api:1 imports benchmarks.metrics"),
        ("benchmarks.protocol", "import importlib\nimportlib.import_module('cli.commands')\n", "cli.commands"),
        ("generative.model", "from ..guides import guide\n", "generative.model:1 imports guides.guide"),
        ("guides.guide", "import training.data as d\n", "guides.guide:1 imports training.data"),
    ],
)
def test_a_back_arrow_is_found_even_when_lazy_or_relative(module, source, found):
    (arrow,) = back_arrows(source, module)
    assert found in arrow


def test_imports_down_or_on_the_same_floor_pass():
    source = "import torch\nfrom generative.config import ModelConfig\nfrom virnet.errors import VirnetError\n"
    assert back_arrows(source, "benchmarks.protocol") == []
    assert back_arrows("from training import loop\n", "cli.train") == []
    assert back_arrows("from cli.train import run_train\n", "training.__main__") == []


def test_no_source_file_is_longer_than_400_lines():
    assert {str(p.relative_to(ROOT)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 400} == {}
