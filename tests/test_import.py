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
