"""The layers, checked on the source: each subpackage imports only the layers below it.

Base modules (errors, jsonvalues, files, version, games and its fact tables) sit under
everything. Then ``model`` -> ``rollout`` -> ``analysis`` (torch) and ``results`` -> ``report``
(torch-free); ``settings`` reads ``results`` (the configs) and calls ``rollout`` lazily; the
``plugin`` and the ``cli`` sit on top. A module's imports are read from its syntax tree (lazy
imports inside functions count too), so a new edge shows up here before it shows up as a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_dreamer_audit"
BASE = {"errors", "jsonvalues", "files", "version", "games", "game_facts"}
ALLOWED: dict[str, set[str]] = {
    "model": BASE,
    "rollout": BASE | {"model"},
    "analysis": BASE | {"model", "rollout", "results"},
    "results": BASE,
    "report": BASE | {"results"},
    "settings": BASE | {"results", "rollout"},
    "plugin": BASE | {"model", "rollout", "analysis", "results", "report", "settings"},
    "cli": BASE | {"model", "rollout", "analysis", "results", "report", "settings"},
}
"""What each layer may import from the package (its own layer is always allowed)."""


def _layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_layers(relative: Path, source: str) -> set[str]:
    """The package's top-level names (subpackage or module) that the module at ``relative``
    (inside the package) imports, read from its ``source``."""
    here = list(relative.parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
            else:  # "from . import x" at the package root
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "pytest_dreamer_audit."
        ):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if _layer(p) == layer]
    assert modules, f"no module in layer {layer}"
    broken = {
        str(p.relative_to(PACKAGE)): sorted(
            _imported_layers(p.relative_to(PACKAGE), p.read_text()) - ALLOWED[layer] - {layer}
        )
        for p in modules
    }
    assert not {name: bad for name, bad in broken.items() if bad}


def test_the_layer_check_sees_a_broken_edge() -> None:
    """The reader finds a report module that imports the settings (the edge this test exists
    to refuse), relative or absolute, at module level or inside a function."""
    for source in (
        "from ..settings import AuditSettings\n",
        "def f():\n    from ..settings import OPTIONS\n",
        "from pytest_dreamer_audit.settings import AuditSettings\n",
    ):
        assert _imported_layers(Path("report/records.py"), source) == {"settings"}
    assert _imported_layers(Path("plugin/cache.py"), "from .. import __version__\n") == {
        "__version__"
    }
