"""The score's claims (``results/claims.py``) pinned where the covering tests left them loose,
against the mutants that survived ``python tests/run_mutation.py
pytest_dreamer_audit/results/claims.py --tests ...`` (benchmarks/mutation_claims.md): the
width ``k`` and its bounds, what a test is named, the empty and one-step explanations, which
facts may be the third null's control, and the configuration a table is computed with."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.claims import (
    ClaimsTable,
    _adjusted,
    _control,
    _Picks,
    _Raw,
    _raw,
    _score_rows,
    claims_table,
    score_associations,
    score_event_test,
)
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.nulls import recentred_means
from pytest_dreamer_audit.results.semantics import other_facts
from pytest_dreamer_audit.results.strata import Blocks, PicksTest, confounder, picks_test
from pytest_dreamer_audit.results.two_nulls import Nulls
from pytest_dreamer_audit.testing import fake_explanation

FAST = ClaimConfig(draws=99, bootstrap=50)


def _no_steps(e: Explanation) -> Explanation:
    return dataclasses.replace(e, valid=np.zeros_like(e.valid))


def _one_step(e: Explanation) -> Explanation:
    """Only step 0 of rollout 0 analysed, and picked first there."""
    valid = np.zeros_like(e.valid)
    valid[0, 0] = True
    top = e.top_observations.copy()
    top[0, 0] = 0
    return dataclasses.replace(e, valid=valid, top_observations=top)


def test_k_picks_that_many_observations_per_rollout() -> None:
    # kills score_event_test_6 (k ignored), _10, _11 (k = 1 refused), _24 (width None),
    # _84 (k None), _85 (picks None)
    e = fake_explanation(steps=20, episodes=5, top_k=3, seed=1)
    hits = e.fact("sticky").astype(bool)
    top = e.top_observations
    for k in (1, 2, 3):
        test = score_event_test(e, "sticky", FAST, k)
        steps = top[:, :k]
        picked = hits[steps, np.arange(5)[:, None]]  # [B, k]
        assert (test.k, test.picks) == (k, 5 * k)
        assert test.precision == pytest.approx(picked.mean())
    assert score_event_test(e, "sticky", FAST).k == 3  # the explanation's top_k


@pytest.mark.parametrize("k", [0, 4])
def test_a_k_outside_the_explanations_top_k_is_refused_with_the_range(k: int) -> None:
    # kills score_event_test_14 (no message), _15 (shape[2]: an IndexError)
    e = fake_explanation(steps=10, episodes=3, top_k=3)
    with pytest.raises(ConfigError, match=rf"^k must be in 1\.\.3 \(the explanation's top_k\), "
                       rf"got {k}$"):  # fmt: skip
        score_event_test(e, "sticky", FAST, k)


def test_an_explanation_without_analysed_steps_makes_no_claims() -> None:
    # kills score_event_test_18, _19, _20, _21; score_associations_5; claims_table_5 to _10
    e = fake_explanation(steps=10, episodes=3)
    empty = _no_steps(e)
    with pytest.raises(ConfigError, match=r"^the explanation has no analysed steps, so it can "
                       r"make no claims$"):  # fmt: skip
        score_event_test(empty, "sticky", FAST)
    assert score_associations(empty, FAST) == []
    table = claims_table(empty, FAST)
    assert (table.facts, table.factors, table.scores) == ((), (), ())
    assert math.isnan(table.resolution)
    assert isinstance(table, ClaimsTable)


def test_one_analysed_step_is_enough_to_be_tested() -> None:
    # kills score_event_test_18 and score_associations_5 (== 1 in place of == 0)
    e = _one_step(fake_explanation(steps=10, episodes=3, seed=2))
    test = score_event_test(e, "sticky", FAST)
    assert test.picks == 1
    assert test.p_above == 1.0  # one observation: every draw is the observation itself
    rows = score_associations(e, FAST)
    assert [r.picks for r in rows] == [1] * len(rows)
    assert "sticky" in [r.name for r in rows]


def near(explanation: Explanation) -> np.ndarray:
    return explanation.fact("sticky")


def test_a_test_is_named_after_its_fact_or_function_else_the_event() -> None:
    # kills score_event_test_39 to _54 (the name)
    e = fake_explanation(steps=10, episodes=3, seed=3)
    assert score_event_test(e, "sticky", FAST).name == "sticky"
    assert score_event_test(e, "executed_action=up", FAST).name == "executed_action=up"
    assert score_event_test(e, near, FAST).name == "near"
    assert score_event_test(e, lambda x: x.fact("sticky"), FAST).name == "<lambda>"
    assert score_event_test(e, e.fact("sticky"), FAST).name == "the event"


def _acting_world(seed: int = 5) -> Explanation:
    """Freeway with three actions; the score is high where the agent pressed ``down`` (and
    ``move_ready`` mostly follows ``down``): its top 4 steps per rollout are ``down`` steps, so
    they avoid ``up``."""
    rng = np.random.default_rng(seed)
    e = fake_explanation(steps=40, episodes=8, top_k=4, seed=seed)
    action = rng.integers(0, 3, e.valid.shape)
    down = action == 2
    ready = down ^ (rng.random(e.valid.shape) < 0.15)
    scores = down + 0.5 * rng.random(e.valid.shape)
    facts = e.facts.copy()
    facts[..., e.fact_names.index("executed_action")] = action
    facts[..., e.fact_names.index("move_ready")] = ready
    top = np.argsort(-scores, axis=0, kind="stable")[:4].T.copy()  # [B, 4]
    return dataclasses.replace(e, facts=facts, observation_scores=scores.astype(np.float32),
                               top_observations=top)  # fmt: skip


def test_an_action_event_is_never_controlled_for_another_action() -> None:
    # kills score_event_test_78 (the control chosen as if the event had no name): the rows of
    # one categorical fact exclude each other, so "down" would explain "up" away
    e = _acting_world()
    test = score_event_test(e, "executed_action=up", FAST)
    assert test.p_below <= 0.05  # the picks avoid "up": a claim, so the third null runs
    assert test.controlled_for == "move_ready"
    # the same event as an array has no name: any other fact may be the control
    array = score_event_test(e, e.fact("executed_action=up"), FAST)
    assert array.controlled_for.startswith("executed_action=")


def test_a_one_sided_test_runs_the_third_null_only_for_above() -> None:
    # kills score_event_test_67 (one_sided=None to the control): "below" is not tested, so the
    # picks avoiding "up" make no claim and draw no control
    e = _acting_world()
    test = score_event_test(e, "executed_action=up", FAST, one_sided=True)
    assert test.p_above == 1.0
    assert math.isnan(test.p_below)
    assert test.controlled_for == ""
    assert test.family == 1


def test_a_table_uses_the_configuration_it_is_given() -> None:
    # kills claims_table_2 (claims and ClaimConfig(): the defaults in place of the config)
    e = fake_explanation(steps=12, episodes=4, seed=4)
    table = claims_table(e, ClaimConfig(level=0.01, draws=99, bootstrap=50, k=5))
    assert {s.level for s in table.scores} == {0.01}
    assert {f.level for f in table.facts} == {0.01}
    assert table.resolution == pytest.approx(1 / 24)  # 4! pairings, every one enumerated


def test_picks_skip_the_missing_entries_and_the_padding_steps() -> None:
    # kills _valid_index_8 (padding read as observation 1), _score_picks_9 (the -1 entries
    # read as the last step)
    e = fake_explanation(steps=10, episodes=3, top_k=3, lengths=[10, 6, 10], seed=6)
    top = np.array([[0, 5, -1], [7, 2, 3], [9, -1, -1]])  # step 7 of rollout 1 is padding
    event = np.zeros(e.valid.shape, dtype=bool)
    event[[0, 3, 9, 7], [0, 1, 0, 1]] = True  # (7, 1) is padding: never counted
    test = score_event_test(dataclasses.replace(e, top_observations=top), event, FAST)
    assert test.picks == 5  # (0, 0), (5, 0), (2, 1), (3, 1), (9, 2)
    assert test.precision == pytest.approx(2 / 5)
    assert test.base_rate == pytest.approx(3 / 26)


def test_an_event_given_as_an_array_is_not_controlled_for_the_fact_it_copies() -> None:
    # kills _control_16, _20 (the event's values not given to the confounder): the row
    # "executed_action=down" is this event, so shuffles within it would move nothing
    e = _acting_world()
    test = score_event_test(e, e.fact("executed_action=down"), FAST)
    assert test.verdict() == "above"
    assert test.controlled_for == "move_ready"


def _two_raws() -> tuple[list[_Raw], list[PicksTest | None]]:
    """Two events, p-values (shift above, shift below, swap above, swap below): ``a`` beats
    both nulls above (0.002 the larger) and has no control; ``b`` is rare at the picks (below:
    shift 0.003 the larger) and its control lets "above" go (0.9) and "below" pass (0.004)."""
    a = _Raw("a", 0.5, 0.2, (0.1, 0.4, 0.15, 0.45), (0.001, 0.04, 0.002, 0.01), (0.3, 0.2, 0.4))
    b = _Raw("b", 0.1, 0.3, (0.2, 0.5, 0.25, 0.55), (0.6, 0.003, 0.5, 0.002), (-0.2, -0.3, -0.1))
    return [a, b], [None, PicksTest("g", 0.9, 0.004)]


def test_both_directions_are_one_holm_family_with_every_field_filled() -> None:
    # kills _adjusted_1 (one-sided by default), _43, _44 (the shift's "below"), _78, _80, _99,
    # _120 (family), _92, _113, _130 (swap_q05), _116, _123 (missing fields), _137
    # (effect_low), _both_13 (the swap's "above" read as "below"), _by_3
    raws, controls = _two_raws()
    a, b = _adjusted(raws, controls, 5, 80, 0.05)
    # the family, (max of the nulls, then of the control): a 0.002, 0.04; b 0.9, 0.004;
    # Holm: 0.002 x 4, 0.004 x 3, 0.04 x 2, 0.9 x 1
    assert (a.p_above, a.p_below) == pytest.approx((0.008, 0.08))
    assert (b.p_above, b.p_below) == pytest.approx((0.9, 0.012))
    assert (a.family, b.family) == (4, 4)
    assert (a.verdict(), b.verdict()) == ("above", "below")
    # without b's control: b's 0.6 and 0.003 in its place (0.003 x 3 after 0.002 x 4)
    assert (b.uncontrolled_p_above, b.uncontrolled_p_below) == pytest.approx((0.6, 0.009))
    assert (a.uncontrolled_p_above, a.uncontrolled_p_below) == pytest.approx((0.008, 0.08))
    # the shifts alone: a's 0.001 x 4 (0.04 stays); b's 0.6 and 0.003
    assert (a.shift_p_above, a.shift_p_below) == pytest.approx((0.004, 0.08))
    assert (b.shift_p_above, b.shift_p_below) == pytest.approx((0.6, 0.009))
    assert (a.controlled_for, b.controlled_for) == ("", "g")
    assert (b.null_q05, b.null_q95, b.swap_q05, b.swap_q95) == (0.2, 0.5, 0.25, 0.55)
    assert (b.effect, b.effect_low, b.effect_high) == (-0.2, -0.3, -0.1)
    assert (a.name, a.precision, a.base_rate) == ("a", 0.5, 0.2)
    assert (a.k, a.picks, a.level) == (5, 80, 0.05)


def test_one_sided_leaves_every_below_p_value_undefined() -> None:
    # kills _adjusted_6 (the uncontrolled "below" tested), _42 (the shift's "below" tested)
    raws, controls = _two_raws()
    a, b = _adjusted(raws, controls, 5, 80, 0.05, one_sided=True)
    assert (a.p_above, b.p_above) == pytest.approx((0.004, 0.9))  # 0.002 x 2, 0.9 x 1
    assert (a.family, b.family) == (2, 2)
    for row in (a, b):
        assert math.isnan(row.p_below)
        assert math.isnan(row.uncontrolled_p_below)
        assert math.isnan(row.shift_p_below)
    assert a.shift_p_above == pytest.approx(0.002)
    assert b.uncontrolled_p_above == pytest.approx(0.6)


def test_the_score_table_tests_both_directions() -> None:
    # kills _adjusted_1 through score_associations (its rows are two-sided)
    rows = {r.name: r for r in score_associations(_acting_world(), FAST)}
    up = rows["executed_action=up"]
    assert up.p_below < 0.5 < up.p_above  # the picks avoid "up"
    assert up.family == 2 * len(rows)
    assert not math.isnan(up.shift_p_below)


def _control_setup(level: float) -> tuple[_Picks, _Raw, np.ndarray, np.ndarray, ClaimConfig]:
    e = _acting_world()
    claims = ClaimConfig(draws=99, bootstrap=50, seed=2, level=level)
    picks = _Picks.of(e, 4, Nulls.draw(e.valid, claims))
    hits = e.fact("sticky")[e.valid].astype(bool)  # at random: p-values inside (0, 1)
    raw = _raw(picks, "sticky", hits)
    return picks, raw, hits, e.observation_scores[e.valid], claims


def test_the_third_null_runs_at_a_p_value_exactly_at_the_level_with_its_own_seed() -> None:
    # kills _control_11 (>= level), _27 (seed None), _36 (seed + 4), _28, _34 (draws not
    # stored in memo)
    picks, raw, hits, score, claims = _control_setup(level=0.03)
    others = other_facts(_acting_world())
    at_level = dataclasses.replace(raw, p=(0.02, 1.0, 0.03, 1.0))  # above: max(0.02, 0.03)
    memo: dict[str, Blocks] = {}
    control = _control(picks, "sticky", at_level, hits, score, others, claims,
                       one_sided=True, memo=memo)  # fmt: skip
    assert control is not None
    by = confounder("sticky", score, others, hits.astype(np.float64))
    assert by is not None
    assert control.by == by[0] == "executed_action=down"  # the score is high at "down"
    assert list(memo) == ["executed_action=down"]
    assert control == picks_test(picks.at, hits, by, draws=99, seed=2 + 3)
    assert 0.05 < control.p_above < 0.95  # a value another seed would move
    # just above the level: no claim is possible, so no third null
    above = dataclasses.replace(raw, p=(0.02, 1.0, 0.0301, 1.0))
    assert _control(picks, "sticky", above, hits, score, others, claims,
                    one_sided=True, memo={}) is None  # fmt: skip


def test_no_picks_give_an_undefined_test_not_a_crash() -> None:
    # kills _raw_1 to _21 but _18, _20 (the raw test of no picks: NaN, one per field)
    e = fake_explanation(steps=10, episodes=3, top_k=3, seed=1)
    none = dataclasses.replace(e, top_observations=np.full((3, 3), -1))
    test = score_event_test(none, "sticky", FAST)
    assert (test.name, test.picks, test.family) == ("sticky", 0, 0)
    assert test.base_rate == pytest.approx(e.fact("sticky")[e.valid].mean())
    for value in (test.precision, test.null_q05, test.null_q95, test.swap_q05, test.swap_q95,
                  test.p_above, test.p_below, test.shift_p_above, test.shift_p_below,
                  test.effect, test.effect_low, test.effect_high):  # fmt: skip
        assert isinstance(value, float)
        assert math.isnan(value)


def _counted(observed: float, null: np.ndarray, exact: bool) -> float:
    """The p-value of ``observed`` against ``null`` counted by hand: NaN draws count as
    beating it; an exact enumeration holds the observation itself."""
    count = int(np.count_nonzero((null >= observed) | np.isnan(null)))
    return max(count, 1) / len(null) if exact else (1 + count) / (1 + len(null))


def test_the_four_raw_p_values_are_each_null_in_each_direction() -> None:
    # kills _raw_51, _52 (the shifts' "below"), _61, _63, _66, _67, _68 (the swaps' "below",
    # exact)
    e = fake_explanation(steps=30, episodes=4, top_k=5, seed=7)
    rng = np.random.default_rng(7)
    hits = rng.random(e.valid.shape) < 0.3
    nulls = Nulls.draw(e.valid, FAST)
    assert nulls.swaps.exact  # 4! = 24 pairings <= 99
    picks = _Picks.of(e, 5, nulls)
    flat = hits[e.valid]
    raw = _raw(picks, "h", flat)
    precision = float(flat[picks.at].mean())
    shifted = flat[picks.shifted].mean(axis=1)
    swapped = recentred_means(flat, picks.at, picks.swapped)
    expected = (
        _counted(precision, shifted, exact=False),
        _counted(-precision, -shifted, exact=False),
        _counted(precision, swapped, exact=True),
        _counted(-precision, -swapped, exact=True),
    )
    assert raw.p == pytest.approx(expected)
    assert all(0.05 < p < 1 for p in expected)  # no direction at a floor or a ceiling


def test_every_score_row_has_the_tables_width_picks_and_controls() -> None:
    # kills _score_rows_1, _55 (k None), _56 (picks None), _43 ("below" claims get no control),
    # _33 (draws not stored in memo); claims_table_19 (no factor statuses)
    e = _acting_world()
    memo: dict[str, Blocks] = {}
    rows = {r.name: r for r in _score_rows(e, Nulls.draw(e.valid, FAST), FAST, memo)}
    assert {(r.k, r.picks) for r in rows.values()} == {(4, 32)}
    up = rows["executed_action=up"]
    assert up.controlled_for == "move_ready"  # a claim below is controlled too
    assert "move_ready" in memo
    table = claims_table(e, FAST)
    assert [s.factor for s in table.factors] == list(range(e.rank))


def test_a_swap_null_with_no_defined_draw_leaves_its_quantiles_and_effect_undefined() -> None:
    # kills _raw_71, _raw_99 (the empty swap null's quantiles and mean computed anyway: an
    # IndexError, a warning): every pick is in rollout 0 past the others' two steps, and none
    # of these 9 draws pairs rollout 0 with itself
    e = fake_explanation(steps=10, episodes=4, top_k=3, lengths=[10, 2, 2, 2], seed=1)
    top = np.full((4, 3), -1)
    top[0] = [5, 6, 7]
    claims = ClaimConfig(draws=9, bootstrap=20, seed=2)
    test = score_event_test(dataclasses.replace(e, top_observations=top), "sticky", claims)
    assert test.picks == 3
    assert math.isnan(test.swap_q05)
    assert math.isnan(test.swap_q95)
    assert math.isnan(test.effect)
    assert test.p_above == 1.0  # the undefined draws count as beating the picks
    assert test.null_q95 == pytest.approx(0.0)
