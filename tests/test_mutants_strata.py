"""The third null (``results/strata.py``) checked against a computation written out by hand,
against the mutants that survived ``python tests/run_mutation.py
pytest_dreamer_audit/results/strata.py --tests tests/test_strata.py tests/test_semantics.py``
(benchmarks/mutation_claims.md): the seed and the shared draws of ``memo``, the "below"
p-value of the picks, one-sided against two-sided, the claimable factors, and the boundaries
(a Spearman of exactly :data:`MIN_CONFOUNDING`, exactly ``n / 2`` distinct values, a value
exactly at a quantile edge)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_dreamer_audit.results.nulls import max_adjusted, rank_scores
from pytest_dreamer_audit.results.strata import (
    MIN_CONFOUNDING,
    Blocks,
    confounder,
    determines,
    picks_test,
    shuffles,
    strata_of,
    strata_test,
)

DRAWS = 199


def _counted(observed: float, null: np.ndarray) -> float:
    """``(1 + #{null >= observed}) / (1 + D)``, written out (not ``nulls.p_value``)."""
    return float((1 + np.count_nonzero(null >= observed)) / (1 + len(null)))


def _picks_world() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """60 observations, a control with 4 values, an event that holds in a third of them and 12
    picks (one at index 0) that hit it about as often as chance, so both p-values are inside
    (0, 1) and neither is the smallest possible."""
    rng = np.random.default_rng(11)
    by = rng.integers(0, 4, 60).astype(np.float64)
    hits = (rng.random(60) < np.where(by >= 2, 0.5, 0.2)).astype(np.int32)
    at = np.concatenate([[0], rng.choice(np.arange(1, 60), 11, replace=False)])
    return by, hits, at


def test_the_picks_hits_are_counted_against_seeded_shuffles_in_both_directions() -> None:
    # kills picks_test_16 and _blocks_9 (seed None), picks_test_41 (p_below NaN),
    # picks_test_45, _46 (the "below" p-value with a sign dropped)
    by, hits, at = _picks_world()
    test = picks_test(at, hits, ("g", by), draws=DRAWS, seed=5)
    source = shuffles(strata_of(by), DRAWS, 5)  # [D, n]: the same draws, gathered in full
    null = hits[source[:, at]].sum(axis=1).astype(np.float64)  # [D] hits at the picks
    observed = float(hits[at].sum())
    assert test.by == "g"
    assert test.p_above == pytest.approx(_counted(observed, null))
    assert test.p_below == pytest.approx(_counted(-observed, -null))
    assert 1 / (DRAWS + 1) < test.p_below < 1
    assert 1 / (DRAWS + 1) < test.p_above < 1
    assert test.p_above + test.p_below > 1  # the draws equal to the picks count on both sides


def test_the_picks_test_stores_its_draws_in_memo_and_reads_them_from_there() -> None:
    # kills picks_test_17 (memo not passed on), _blocks_16 (None stored), _blocks_5 (read by
    # the values in place of the name: unhashable)
    by, hits, at = _picks_world()
    memo: dict[str, Blocks] = {}
    first = picks_test(at, hits, ("g", by), draws=DRAWS, seed=5, memo=memo)
    assert list(memo) == ["g"]
    assert sum(len(members) for members, _ in memo["g"]) == len(by)
    again = picks_test(at, hits, ("g", by), draws=DRAWS, seed=99, memo=memo)  # seed unused
    assert again == first
    # a control of the same name is read from memo, not drawn: here draws that move nothing
    still: dict[str, Blocks] = {"g": [(np.arange(60), np.tile(np.arange(60), (DRAWS, 1)))]}
    frozen = picks_test(at, hits, ("g", by), draws=DRAWS, seed=5, memo=still)
    assert (frozen.p_above, frozen.p_below) == (1.0, 1.0)


def _graded_world() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80 observations in 5 strata; factor 0 rises with the fact, factor 1 is noise, factor 2
    falls with it (each also within the strata)."""
    rng = np.random.default_rng(4)
    by = rng.integers(0, 5, 80).astype(np.float64)
    fact = by + rng.random(80)
    noise = rng.random((80, 3))
    activations = np.stack([fact + noise[:, 0], noise[:, 1], -fact + noise[:, 2]], 1)
    return activations, fact, by


@pytest.mark.parametrize("one_sided", [False, True])
def test_the_factors_are_ranked_against_seeded_shuffles_of_the_fact_within_strata(
    one_sided: bool,
) -> None:
    # kills strata_test_12 (seed None), _21 (always two-sided), _27, _30 (claimable ignored)
    activations, fact, by = _graded_world()
    claimable = np.array([True, False, True])
    test = strata_test(activations, fact, ("g", by), claimable, one_sided=one_sided,
                       draws=DRAWS, seed=8)  # fmt: skip
    a = rank_scores(activations)
    v = rank_scores(fact[:, None])[:, 0]
    null = v[shuffles(strata_of(by), DRAWS, 8)] @ a  # [D, r]
    side = (lambda x: x) if one_sided else np.abs
    p, q95 = max_adjusted(side(v @ a), side(null), claimable)
    np.testing.assert_allclose(test.p_values, p)
    assert test.q95 == pytest.approx(q95)
    assert test.by == "g"
    assert np.isnan(test.p_values[1])  # not claimable: no p-value, and not in the maximum
    assert test.p_values[0] == pytest.approx(1 / (DRAWS + 1))
    # the falling factor beats the shuffles only when the sign does not matter
    assert (test.p_values[2] > 0.5) if one_sided else (test.p_values[2] < 0.05)


def test_the_strata_test_stores_its_draws_in_memo() -> None:
    # kills strata_test_13 (memo not passed on)
    activations, fact, by = _graded_world()
    memo: dict[str, Blocks] = {}
    claimable = np.ones(3, dtype=bool)
    first = strata_test(activations, fact, ("g", by), claimable, one_sided=False, draws=DRAWS,
                        seed=8, memo=memo)  # fmt: skip
    assert list(memo) == ["g"]
    again = strata_test(activations, fact, ("g", by), claimable, one_sided=False, draws=DRAWS,
                        seed=1, memo=memo)  # fmt: skip
    np.testing.assert_array_equal(again.p_values, first.p_values)


def test_a_spearman_of_exactly_the_minimum_is_enough_to_confound() -> None:
    # kills confounder_32 (<= in place of <): these two orders have a Spearman of exactly 0.1
    values = np.arange(5.0)
    other = np.array([0.0, 4, 3, 1, 2])
    found = confounder("f", values, [("g", other)])
    assert found is not None
    assert found[0] == "g"
    assert confounder("f", values, [("g", 4 - other)]) is not None  # -0.1: |-0.1| = 0.1
    assert confounder("f", values, [("g", np.array([0.0, 4, 3, 2, 1]))]) is None  # 0.0
    assert MIN_CONFOUNDING == 0.1


def test_a_fact_with_exactly_half_as_many_values_as_observations_can_determine() -> None:
    # kills determines_14 (< n // 2) and _16 (<= n // 3): 12 values, each twice, in 24
    # observations; the parity is constant within each value, not within the 10 quantile bins
    by = np.repeat(np.arange(12.0), 2)
    assert determines(by, by % 2)
    # 13 values in 25 observations (one value once): more than half, so no reason
    by = np.concatenate([by, [12.0]])
    assert not determines(by, by % 2)
    # 13 values, each twice: half again
    by = np.repeat(np.arange(13.0), 2)
    assert determines(by, by % 2)


def test_a_value_exactly_at_a_quantile_edge_opens_the_bin_above() -> None:
    # kills strata_of_32 (side="left"): the twenty 10s are the 3rd to 7th deciles, an edge;
    # bins are [edge, next edge), so the 10s share theirs with 11 and 12 (below 12.2), not
    # with 8 and 9
    values = np.concatenate([np.arange(10.0), np.full(20, 10.0), np.arange(11.0, 21.0)])
    labels = strata_of(values)
    ten = labels[values == 10.0]
    assert len(set(ten.tolist())) == 1
    together = sorted(set(values[labels == ten[0]].tolist()))
    assert together == [10.0, 11.0, 12.0]
    assert labels.max() - labels.min() + 1 <= 10
