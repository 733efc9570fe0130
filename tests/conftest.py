from __future__ import annotations

# pytester's in-process runs drop modules first imported during a run from sys.modules, and some
# extension modules (numpy.fft, scipy's) cannot be imported twice in one process: import every
# module an audit touches up front.
import matplotlib.backends.backend_agg
import pytest
import scipy.optimize
import scipy.stats
import torch

import pytest_dreamer_audit.plugin.audit
import pytest_dreamer_audit.plugin.fixtures
import pytest_dreamer_audit.report.render
from pytest_dreamer_audit.analysis.factorize import _import_torchnmf
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.testing import tiny_agent

pytest_plugins = ["pytester"]
_PRELOADED = (
    matplotlib.backends.backend_agg,
    scipy.optimize,
    scipy.stats,
    pytest_dreamer_audit.plugin.audit,
    pytest_dreamer_audit.plugin.fixtures,
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
