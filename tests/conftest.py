from __future__ import annotations

# pytester's in-process runs drop modules first imported during a run from sys.modules, and some
# extension modules (numpy.fft, scipy's) cannot be imported twice in one process: import every
# module an audit touches up front.
from pathlib import Path

import matplotlib.backends.backend_agg
import pytest
import scipy.optimize
import scipy.stats
import torch

import pytest_dreamer_audit.plugin.audit
import pytest_dreamer_audit.plugin.audit_object
import pytest_dreamer_audit.report.render
from pytest_dreamer_audit.analysis.factorize import _import_torchnmf
from pytest_dreamer_audit.cli import main
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts
from pytest_dreamer_audit.testing import FAST_INI, tiny_agent, write_tiny_checkpoint
from tests.html_checks import ID_PAYLOAD, LABEL_PAYLOAD, MESSAGE_PAYLOAD

pytest_plugins = ["pytester"]
_PRELOADED = (
    matplotlib.backends.backend_agg,
    scipy.optimize,
    scipy.stats,
    pytest_dreamer_audit.plugin.audit,
    pytest_dreamer_audit.plugin.audit_object,
    pytest_dreamer_audit.report.render,
    _import_torchnmf(),
)

# Tests run two xdist workers on two cores: one torch thread each avoids oversubscription, which
# slows small matrix work by an order of magnitude.
torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; torch sees none on this machine")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture
def freeway_agent() -> DreamerAgent:
    """A tiny Freeway POMDP agent with seeded random weights."""
    return tiny_agent("freeway", pomdp=True, seed=3)


@pytest.fixture(scope="module")
def agent() -> DreamerAgent:
    """The replays' and the sanity check's tiny agent (a module may define its own)."""
    return tiny_agent(seed=5)


@pytest.fixture(scope="module")
def trajectory(agent: DreamerAgent) -> Trajectory:
    """3 x 12 rollouts of :func:`agent` (a module may define its own)."""
    return run_rollouts(agent, "freeway", episodes=3, steps=12, seed=9)


# --- projects and CLI outputs whose names and messages carry markup (test_injection, test_browser)

EVIL_TESTS = f"""
import pytest

ID = {ID_PAYLOAD!r}


@pytest.mark.parametrize("value", [1], ids=[ID])
def test_plain(value):
    pass


def test_audited(dreamer_explanation):
    pass


@pytest.mark.parametrize("value", [1], ids=[ID])
def test_audited_failing(dreamer_audit, value):
    assert value == 2, {MESSAGE_PAYLOAD!r}
"""
FAST_CLI = ["--episodes", "2", "--steps", "8", "--rank", "2", "--top-k", "2"]
FAST_CLI += ["--stability-refits", "0", "--render-episodes", "1", "--device", "cpu"]
FAST_CLI += ["--no-progress"]


@pytest.fixture
def evil_project_report(pytester: pytest.Pytester) -> Path:
    """The self-contained pytest-html report of a project whose checkpoint label and parameter
    ids carry payloads (a plain test, an audited one and a failing audited one)."""
    checkpoint = write_tiny_checkpoint(pytester.path / f"{LABEL_PAYLOAD}.pth", seed=1)
    pytester.makeini(FAST_INI)
    pytester.makepyfile(test_evil=EVIL_TESTS)
    result = pytester.runpytest(
        "--dreamer-checkpoint",
        str(checkpoint),
        "--html=report.html",
        "--self-contained-html",
        "-o",
        "render_collapsed=",  # every test's extras open, as a reader expands them
    )
    result.assert_outcomes(passed=2, failed=1)
    return pytester.path / "report.html"


@pytest.fixture(scope="session")
def evil_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder (index.html and the PNGs) of ``dreamer-audit explain`` of a checkpoint
    whose path carries a payload. Shared: copy it before changing anything in it."""
    folder = tmp_path_factory.mktemp("cli") / LABEL_PAYLOAD
    folder.mkdir()
    checkpoint = write_tiny_checkpoint(folder / "model<script>.pth", seed=2)
    out = folder.parent / "out"
    assert main(["explain", str(checkpoint), "--out", str(out), *FAST_CLI]) == 0
    return out
