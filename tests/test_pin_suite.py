"""Tests of ``research/pin_suite.py``: the report of every number the example suite pins."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType

import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.plugin.audit import AuditCache
from pytest_dreamer_audit.settings import AuditSettings
from pytest_dreamer_audit.testing import write_tiny_checkpoint
from tests.research_scripts import import_research

EPISODES = 2


@pytest.fixture(scope="module")
def pin_suite() -> ModuleType:
    """The example script, imported from its path."""
    return import_research("pin_suite")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> AuditSettings:
    """A tiny checkpoint's settings (rank 3: the tiny pooled matrix is 5 columns wide)."""
    checkpoint = write_tiny_checkpoint(tmp_path_factory.mktemp("pins") / "tiny.pth", seed=1)
    return AuditSettings(checkpoint=str(checkpoint), rank=3)


def test_report_has_one_section_per_seed_and_episode_count(
    pin_suite: ModuleType, base: AuditSettings, tmp_path: Path
) -> None:
    text = pin_suite.report(base, [0, 7], [EPISODES, 3], tmp_path)
    headers = [line for line in text.splitlines() if line.startswith("## ")]
    assert [h.split(" (")[0] for h in headers] == [
        "## seed 0, 2 episodes x 50 steps",
        "## seed 7, 2 episodes x 50 steps",
        "## seed 0, 3 episodes x 50 steps",
        "## seed 7, 3 episodes x 50 steps",
    ]


def test_report_prints_the_values_the_fixtures_compute(
    pin_suite: ModuleType, base: AuditSettings, tmp_path: Path
) -> None:
    text = pin_suite.report(base, [0], [EPISODES], tmp_path / "report")
    settings = dataclasses.replace(base, seed=0, episodes=EPISODES)
    result = AuditCache(tmp_path / "direct").explanation(settings)
    e, m = result.explanation, result.explanation.metrics
    assert f"- mean return {float(e.returns.mean()):.3f} " in text
    chosen = e.actions[e.valid]
    up = float((chosen == e.action_names.index("up")).mean())
    assert f"up {up:.1%}" in text
    assert f"- deletion_ratio {m.deletion_ratio:.3f}" in text
    assert f"- sanity_spearman {m.sanity_spearman:.3f}" in text
    assert f"- relative_error {m.relative_error:.3f}" in text
    for s in result.claims.scores:
        assert f"| {s.name} | {s.precision:.3f} | {s.base_rate:.3f} |" in text
    facts = [line for line in text.splitlines() if line.startswith("| chicken_row | graded |")]
    assert len(facts) == 1
    assert text.count("Factors that make no claims: ") == 1


def test_main_writes_the_report_and_refuses_empty_episode_counts(
    pin_suite: ModuleType, base: AuditSettings, tmp_path: Path
) -> None:
    out = tmp_path / "pins.md"
    with pytest.raises(ConfigError, match="--episodes must all be at least 1"):
        pin_suite.main([base.checkpoint, "--episodes", "0"])
    with pytest.raises(ConfigError, match="larger than the 5 columns"):
        pin_suite.main([base.checkpoint, "--episodes", "1", "--out", str(out)])
    assert not out.exists()
    argv = [base.checkpoint, "--episodes", "1", "--rank", "3", "--out", str(out)]
    assert pin_suite.main(argv) == 0
    text = out.read_text()
    assert text.startswith(f"# Pinned values of `{base.checkpoint}`")
    assert "## seed 0, 1 episodes" in text
    assert "## seed 1000, 1 episodes" in text
