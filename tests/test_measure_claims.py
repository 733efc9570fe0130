"""Tests of ``research/measure_claims.py`` on a tiny checkpoint: the tables use both nulls, say
"time" where only the circular shifts are beaten, and run the random-weights control over seeds."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from pytest_dreamer_audit.testing import write_tiny_checkpoint
from tests.research_scripts import import_research


@pytest.fixture(scope="module")
def measure_claims() -> ModuleType:
    return import_research("measure_claims")


def test_writes_both_nulls_and_random_seed_counts(
    measure_claims: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pth", seed=1)
    monkeypatch.setattr(measure_claims, "RANK", 3)  # the tiny pooled matrix is 5 columns wide
    out = tmp_path / "table.md"
    code = measure_claims.main(
        ["--checkpoint", str(checkpoint), "--episodes", "6", "--steps", "12", "--out", str(out),
         "--skip-steps", "0", "--random-seeds", "1", "2", "3", "4", "5",
         "--configs", "pooled:surprise", "pooled:activation"]
    )  # fmt: skip
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert "ONLY pooled x surprise, pooled x activation" in text
    assert "5 permutation seeds (1, 2, 3, 4, 5)" in text
    for header in ("## 1. Facts localised beyond both nulls", "## 2. The score's top-5",
                   "### Score verdicts and time findings", "swap q95", "effect [95%]"):  # fmt: skip
        assert header in text
    rows = [line for line in text.splitlines() if line.startswith("| rand x5 pool surp s0 |")]
    assert len(rows) >= 2  # the factor table and the score table
    assert "claim " in rows[0]
    assert "/5" in rows[0]


def test_labels_time_when_only_the_shifts_are_beaten(measure_claims: ModuleType) -> None:
    from pytest_dreamer_audit.results.values import FactAssociation, ScoreAssociation

    row = FactAssociation(
        name="chicken_row", kind="graded", per_factor=(-0.4, 0.1), base_rate=float("nan"), k=0,
        null_q95=0.1, p_values=(0.5, 0.9), swap_q95=0.45, shift_p_values=(0.01, 0.9),
        correlations=(-0.4, 0.1),
    )  # fmt: skip
    state = measure_claims.fact_state(row)
    assert (state.state, state.factor) == ("time", 0)
    assert measure_claims.fact_cell(row).startswith("time .40 f0")
    claimed = FactAssociation(
        name="chicken_row", kind="graded", per_factor=(-0.4, 0.1), base_rate=float("nan"), k=0,
        null_q95=0.1, p_values=(0.01, 0.9), swap_q95=0.2, shift_p_values=(0.01, 0.9),
        correlations=(-0.4, 0.1),
    )  # fmt: skip
    assert measure_claims.fact_cell(claimed).startswith("**.40 f0 >.10/.20 p0.010")
    assert measure_claims.random_fact_cell([row, claimed, None]) == ("**claim 1/2, time 1/2; .40**")
    score = ScoreAssociation(
        name="executed_action=up", precision=0.8, base_rate=0.7, null_q05=0.6, null_q95=0.75,
        p_above=0.4, p_below=1.0, k=5, picks=80, shift_p_above=0.01, shift_p_below=1.0,
    )  # fmt: skip
    assert measure_claims.score_label(score) == "time"
