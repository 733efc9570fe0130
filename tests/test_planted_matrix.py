"""The planted-model matrix on a tiny agent (``research/planted_matrix.py``): every planted model
fails the default trust checks named for it (``planted.MUST_FAIL``), and the table shows it."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from pytest_dreamer_audit.planted import MUST_FAIL
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.results.trustworthy import TRUST_CHECKS, TrustVerdict
from pytest_dreamer_audit.testing import tiny_agent
from tests.research_scripts import import_research


@pytest.fixture(scope="module")
def matrix_module() -> ModuleType:
    return import_research("planted_matrix")


@pytest.fixture(scope="module")
def matrix(matrix_module: ModuleType) -> dict[str, tuple[TrustVerdict, ...]]:
    config = ExplainConfig(rank=3, top_k=3, stability_refits=1)
    # The permuted actor and the untrained network are draws from check 6's null: each passes
    # it one time in 20 (tiny seed 11 is such a draw for the permuted actor). The seed is fixed,
    # so the run is deterministic; tests/test_trust.py checks the null's pass rate itself.
    agent = tiny_agent(seed=12)
    result: dict[str, tuple[TrustVerdict, ...]] = matrix_module.run_matrix(
        agent, episodes=8, steps=20, seed=7100, config=config, keep=1
    )
    return result


def test_the_matrix_audits_the_trained_agent_and_every_planted_model(
    matrix: dict[str, tuple[TrustVerdict, ...]],
) -> None:
    assert list(matrix) == ["trained", *MUST_FAIL]
    assert all(len(verdicts) == len(TRUST_CHECKS) for verdicts in matrix.values())


@pytest.mark.parametrize("name", [name for name, must in MUST_FAIL.items() if must])
def test_each_planted_model_fails_the_checks_named_for_it(
    matrix: dict[str, tuple[TrustVerdict, ...]], matrix_module: ModuleType, name: str
) -> None:
    failed = matrix_module.failures(matrix[name])
    assert set(MUST_FAIL[name]) <= set(failed), (name, failed)


def test_the_edits_fail_for_the_reasons_they_were_planted(
    matrix: dict[str, tuple[TrustVerdict, ...]],
) -> None:
    def value(name: str, number: int) -> float:
        return matrix[name][number - 1].value

    # a posterior that reads only the screen: the same scores whatever the weights or memory
    assert value("screen-reading posterior", 3) == pytest.approx(1.0)
    assert value("screen-reading posterior", 4) == pytest.approx(1.0)
    assert value("posterior ignores deter", 4) == pytest.approx(1.0)
    # nothing a deletion does reaches these policies: the deletion checks are undefined
    for name in ("actor blind to the latent", "posterior = prior"):
        assert math.isnan(value(name, 6)), name
        assert math.isnan(value(name, 7)), name
    # the reward head is read by no check: its column is the trained agent's
    assert [v.value for v in matrix["reward reads one categorical"]] == pytest.approx(
        [v.value for v in matrix["trained"]], nan_ok=True
    )


def test_the_table_has_a_row_per_check_and_the_failures_per_model(
    matrix: dict[str, tuple[TrustVerdict, ...]], matrix_module: ModuleType
) -> None:
    text = matrix_module.table(matrix)
    lines = text.splitlines()
    assert len(lines) == 2 + len(TRUST_CHECKS) + 1
    assert lines[0].startswith("| check | metric | threshold | trained | permuted actor |")
    assert lines[2 + 3].startswith("| 4. posterior reads memory | memory_max_abs | <= 0.9 |")
    assert "**1.000 FAIL**" in lines[2 + 3]
    assert "(must: 4)" in lines[-1]
    assert "n/a" in lines[2 + 5]  # check 6 on the blind actor
