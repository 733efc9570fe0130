from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_dreamer_audit


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, pytest_dreamer_audit as p\n"
        "p.game_spec('freeway'); p.ConfigError\n"
        "print('torch' in sys.modules)\n"
        "p.load_checkpoint\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_lazy_names_resolve_and_unknown_names_raise() -> None:
    from pytest_dreamer_audit.rollout.rollouts import run_rollouts

    assert pytest_dreamer_audit.run_rollouts is run_rollouts
    assert "load_checkpoint" in dir(pytest_dreamer_audit)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = pytest_dreamer_audit.nope


def _imported_after(module: str) -> set[str]:
    """Top-level packages that importing ``module`` in a fresh interpreter pulls in."""
    code = (
        f"import sys, {module}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


# The layers that must never pay for torch (every module of results/ and report/, the torch-free
# top-level modules, and the plugin's hooks that pytest loads on every run).
TORCH_FREE = (
    "pytest_dreamer_audit.results.assertions",
    "pytest_dreamer_audit.results.baseline",
    "pytest_dreamer_audit.results.config",
    "pytest_dreamer_audit.results.explanation",
    "pytest_dreamer_audit.results.semantics",
    "pytest_dreamer_audit.results.similarity",
    "pytest_dreamer_audit.results.trustworthy",
    "pytest_dreamer_audit.results.values",
    "pytest_dreamer_audit.report.artifacts",
    "pytest_dreamer_audit.report.bundle",
    "pytest_dreamer_audit.report.html",
    "pytest_dreamer_audit.report.records",
    "pytest_dreamer_audit.report.render",
    "pytest_dreamer_audit.report.terminal",
    "pytest_dreamer_audit.cli",
    "pytest_dreamer_audit.errors",
    "pytest_dreamer_audit.files",
    "pytest_dreamer_audit.games",
    "pytest_dreamer_audit.jsonvalues",
    "pytest_dreamer_audit.settings",
    "pytest_dreamer_audit.plugin.hooks",
    "pytest_dreamer_audit.plugin.fixtures",
    "pytest_dreamer_audit.plugin.reporting",
    "pytest_dreamer_audit.plugin.state",
    "pytest_dreamer_audit.report.page",
)
# What the plugin imports on every pytest run, and what crosses xdist: not even NumPy.
NUMPY_FREE = (
    "pytest_dreamer_audit.plugin",
    "pytest_dreamer_audit.plugin.hooks",
    "pytest_dreamer_audit.plugin.fixtures",
    "pytest_dreamer_audit.plugin.reporting",
    "pytest_dreamer_audit.plugin.state",
    "pytest_dreamer_audit.report.numbers",
    "pytest_dreamer_audit.report.tables",
    "pytest_dreamer_audit.report.records",
    "pytest_dreamer_audit.report.html",
    "pytest_dreamer_audit.report.terminal",
    "pytest_dreamer_audit.report.artifacts",
    "pytest_dreamer_audit.results.values",
    "pytest_dreamer_audit.results.trustworthy",
    "pytest_dreamer_audit.results.config",
    "pytest_dreamer_audit.settings",
)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_layers_do_not_import_torch(module: str) -> None:
    imported = _imported_after(module)
    assert module.split(".")[0] in imported  # the probe really ran
    assert "torch" not in imported
    assert "torchnmf" not in imported


@pytest.mark.parametrize("module", NUMPY_FREE)
def test_the_per_run_modules_do_not_import_numpy(module: str) -> None:
    assert "numpy" not in _imported_after(module)


def test_the_model_layer_does_import_torch() -> None:
    # The probe can tell: a torch layer shows up as one.
    assert "torch" in _imported_after("pytest_dreamer_audit.model.agent")
