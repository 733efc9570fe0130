from __future__ import annotations

import pytest
import torch

from pytest_dreamer_audit.agent import DreamerAgent
from pytest_dreamer_audit.testing import tiny_agent


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


# Tests run two xdist workers on two cores: one torch thread each avoids oversubscription, which
# slows small matrix work by an order of magnitude.
torch.set_num_threads(1)
