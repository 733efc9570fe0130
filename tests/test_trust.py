"""The trust metrics' building blocks (``analysis/trust.py``) on inputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_dreamer_audit.analysis import trust
from pytest_dreamer_audit.analysis.trust import (
    controlled_deletion,
    deletion_effects,
    matched_cosines,
    mode_one_hot,
    spearman,
    topk_jaccard,
)
from pytest_dreamer_audit.model.agent import DreamerAgent

# --- spearman ---------------------------------------------------------------------------------


def test_spearman_of_a_monotone_relation_is_one_whatever_its_shape() -> None:
    x = torch.tensor([0.1, 0.5, 2.0, 3.0, 10.0])
    assert spearman(x, x.exp()) == pytest.approx(1.0, abs=1e-12)
    assert spearman(x, -(x**3)) == pytest.approx(-1.0, abs=1e-12)


def test_spearman_with_ties_is_pearson_of_average_ranks() -> None:
    # ranks of y: 1, 2, 3.5, 5, 3.5; Pearson with 1..5 is 8 / sqrt(10 * 9.5)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    y = torch.tensor([5.0, 6.0, 7.0, 8.0, 7.0])
    assert spearman(x, y) == pytest.approx(8 / math.sqrt(95), abs=1e-12)


def test_spearman_accepts_integer_tensors_and_tensors_that_need_grad() -> None:
    x = torch.tensor([3, 1, 2])
    y = torch.tensor([30.0, 10.0, 20.0], requires_grad=True)
    assert spearman(x, y) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]),  # constant second vector
        ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]),  # constant first vector
        ([1.0], [2.0]),  # a single pair
        ([], []),
    ],
    ids=["constant-y", "constant-x", "one-pair", "empty"],
)
def test_spearman_is_nan_where_no_ranking_exists(x: list[float], y: list[float]) -> None:
    assert math.isnan(spearman(torch.tensor(x), torch.tensor(y)))


# --- matched_cosines --------------------------------------------------------------------------


def test_matched_cosines_of_a_permuted_rescaled_copy_are_one() -> None:
    reference = torch.rand(5, 7, generator=torch.Generator().manual_seed(0)) + 0.01
    scales = torch.tensor([[2.0], [0.5], [10.0], [1.0], [3.0]])
    other = (reference * scales)[torch.tensor([3, 0, 4, 1, 2])]
    cosines = matched_cosines(reference, other)
    assert cosines.dtype == torch.float64
    assert cosines.shape == (5,)
    torch.testing.assert_close(cosines, torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-12)


def _at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_matched_cosines_maximise_the_total_not_each_row_greedily() -> None:
    """Greedy matching pairs reference 0 with other 0 (cos 10 deg), leaving reference 1 with
    other 1 at 90 deg (total 0.98); the optimal matching crosses over: cos 40 deg twice (1.53)."""
    reference = torch.tensor([_at(0), _at(50)])
    other = torch.tensor([_at(10), _at(-40)])
    cosines = matched_cosines(reference, other)
    expected = math.cos(math.radians(40))
    assert cosines.tolist() == pytest.approx([expected, expected], abs=1e-6)


def test_matched_cosines_follow_the_reference_order_and_allow_extra_rows() -> None:
    reference = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    other = torch.tensor([[0.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.0]])
    # reference 0 can only reach [1, 1, 0] (cos 1/sqrt 2); reference 1 takes [0, 3, 0] (cos 1)
    cosines = matched_cosines(reference, other)
    assert cosines.tolist() == pytest.approx([1 / math.sqrt(2), 1.0], abs=1e-12)


def test_matched_cosines_of_orthogonal_or_zero_rows_are_zero_not_nan() -> None:
    reference = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    other = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    assert matched_cosines(reference, other).tolist() == [0.0, 0.0]


# --- topk_jaccard -----------------------------------------------------------------------------


def test_topk_jaccard_of_a_table_with_itself_is_one_in_any_order() -> None:
    table = torch.tensor([[4, 1, 7], [0, 2, -1]])
    assert topk_jaccard(table, table) == 1.0
    assert topk_jaccard(table, table.flip(1)) == 1.0


def test_topk_jaccard_of_disjoint_tables_is_zero() -> None:
    assert topk_jaccard(torch.tensor([[0, 1], [2, 3]]), torch.tensor([[5, 6], [7, 8]])) == 0.0


def test_topk_jaccard_counts_pairs_not_steps() -> None:
    """Step 3 of episode 0 and step 3 of episode 1 are different observations."""
    assert topk_jaccard(torch.tensor([[3], [-1]]), torch.tensor([[-1], [3]])) == 0.0


def test_topk_jaccard_of_a_partial_overlap_ignores_padding() -> None:
    # {(0,0), (0,1), (1,2)} and {(0,1), (0,5), (1,2), (1,3)}: 2 shared of 5
    first = torch.tensor([[0, 1], [2, -1]])
    second = torch.tensor([[1, 5], [2, 3]])
    assert topk_jaccard(first, second) == pytest.approx(0.4)


def test_topk_jaccard_of_two_empty_tables_is_nan() -> None:
    empty = torch.full((2, 3), -1)
    assert math.isnan(topk_jaccard(empty, empty))


# --- deletion_effects -------------------------------------------------------------------------


def _logits(freeway_agent: DreamerAgent, steps: int, episodes: int, seed: int) -> torch.Tensor:
    s = freeway_agent.sizes
    generator = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(steps, episodes, s.categoricals, s.classes, generator=generator)


def _policy(agent: DreamerAgent, deter: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The actor's probabilities for ``cat[deter, one-hot of each categorical's argmax]``."""
    one_hot = torch.eye(agent.sizes.classes)[logits.argmax(-1)]
    features = torch.cat([deter, one_hot.flatten(start_dim=1)], dim=-1)
    with torch.no_grad():
        return torch.softmax(agent.action_model(features), dim=-1)


def test_deletion_effect_is_the_total_variation_between_the_two_policies(
    freeway_agent: DreamerAgent,
) -> None:
    steps, episodes = 3, 2
    deter = torch.randn(steps, episodes, freeway_agent.sizes.deter)
    posterior = _logits(freeway_agent, steps, episodes, seed=1)
    prior = _logits(freeway_agent, steps, episodes, seed=2)
    effects = deletion_effects(freeway_agent, deter, posterior, prior)
    assert effects.shape == (steps, episodes)
    for t in range(steps):
        for b in range(episodes):
            kept = _policy(freeway_agent, deter[t, b][None], posterior[t, b][None])
            deleted = _policy(freeway_agent, deter[t, b][None], prior[t, b][None])
            expected = 0.5 * float((kept - deleted).abs().sum())
            assert float(effects[t, b]) == pytest.approx(expected, abs=1e-6), (t, b)
    assert bool(((effects >= 0) & (effects <= 1)).all())
    assert float(effects.max()) > 0  # random modes differ: the check above saw real changes


def test_deleting_a_posterior_with_the_priors_modes_changes_nothing(
    freeway_agent: DreamerAgent,
) -> None:
    """Only the modes reach the actor: a posterior that is the prior sharpened (same argmax
    in every categorical) has no effect at all."""
    deter = torch.randn(4, 3, freeway_agent.sizes.deter)
    prior = _logits(freeway_agent, 4, 3, seed=5)
    effects = deletion_effects(freeway_agent, deter, 7 * prior, prior)
    assert effects.tolist() == torch.zeros(4, 3).tolist()


def test_deletion_effects_in_chunks_equal_one_pass(
    freeway_agent: DreamerAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    deter = torch.randn(7, 3, freeway_agent.sizes.deter)
    posterior = _logits(freeway_agent, 7, 3, seed=8)
    prior = _logits(freeway_agent, 7, 3, seed=9)
    whole = deletion_effects(freeway_agent, deter, posterior, prior)
    monkeypatch.setattr(trust, "DELETION_CHUNK", 4)  # 21 states: chunks of 4, 4, ..., 1
    chunked = deletion_effects(freeway_agent, deter, posterior, prior)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    assert float(whole.max()) > 0


def test_mode_one_hot_marks_the_argmax_of_each_categorical() -> None:
    logits = torch.tensor([[[0.1, 2.0, -1.0], [5.0, 5.0, 0.0]]])  # a tie: the first wins
    assert mode_one_hot(logits).tolist() == [[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]]
    assert mode_one_hot(logits.double()).dtype == torch.float64


# --- controlled deletion ----------------------------------------------------------------------


def _reading(agent: DreamerAgent, categoricals: list[int]) -> DreamerAgent:
    """``agent`` whose actor reads only ``categoricals`` (not the deterministic state)."""
    from pytest_dreamer_audit import planted

    state = planted.actor_reads_only(
        planted.reference_state(agent), categoricals, classes=agent.sizes.classes
    )
    return planted.agent_from_state(state, agent)


def _deletion_inputs(
    agent: DreamerAgent, states: int = 300, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    s = agent.sizes
    generator = torch.Generator().manual_seed(seed)
    deter = torch.randn(states, s.deter, generator=generator)
    posterior = 3 * torch.randn(states, s.categoricals, s.classes, generator=generator)
    prior = 3 * torch.randn(states, s.categoricals, s.classes, generator=generator)
    # categorical 0 is always ranked first, categorical 1 always last
    scores = torch.rand(states, s.categoricals, generator=generator) + 1.0
    scores[:, 0] += 10.0
    scores[:, 1] -= 1.0
    return deter, posterior, prior, scores


def test_the_gathered_first_layer_gives_the_actor_s_own_policy(
    freeway_agent: DreamerAgent,
) -> None:
    deter, posterior, _, _ = _deletion_inputs(freeway_agent, states=9)
    s = freeway_agent.sizes
    classes = posterior.argmax(-1) + torch.arange(s.categoricals) * s.classes
    with torch.no_grad():
        (gathered,) = trust._policies(freeway_agent.action_model, deter, [classes])
    expected = torch.stack([_policy(freeway_agent, deter[i][None], posterior[i][None])[0]
                            for i in range(9)])  # fmt: skip
    torch.testing.assert_close(gathered, expected, rtol=0, atol=1e-6)


def test_an_actor_reading_the_top_ranked_categorical_beats_every_permuted_actor(
    freeway_agent: DreamerAgent,
) -> None:
    """The top-ranked 20% of the entries all lie in categorical 0, the one the actor reads:
    deleting them moves it far more than deleting random entries (a quarter of which lie
    there), and more selectively than any permuted actor, which reads every categorical."""
    reader = _reading(freeway_agent, [0])
    result = controlled_deletion(reader.action_model, *_deletion_inputs(freeway_agent), seed=3)
    assert len(result.controls) == trust.DELETION_CONTROLS
    assert result.trained.top_ratio > 2.5
    assert result.trained.bottom == 0.0  # categorical 1 is not read
    assert result.trained.bottom_ratio == 0.0
    assert float(result.control_ratios.max()) < result.trained.top_ratio
    assert result.p_value == pytest.approx(1 / (1 + trust.DELETION_CONTROLS))
    # The actor that reads only the bottom-ranked categorical: deleting the top does nothing.
    other = _reading(freeway_agent, [1])
    low = controlled_deletion(other.action_model, *_deletion_inputs(freeway_agent), seed=3)
    assert low.trained.top == 0.0
    assert low.p_value == pytest.approx(1.0)
    assert low.trained.bottom_ratio > 2.5  # the complement fails it


def test_deletion_that_never_changes_the_policy_has_no_p_value(
    freeway_agent: DreamerAgent,
) -> None:
    from pytest_dreamer_audit import planted

    blind = planted.agent_from_state(
        planted.actor_blind_to_latent(planted.reference_state(freeway_agent)), freeway_agent
    )
    result = controlled_deletion(
        blind.action_model, *_deletion_inputs(freeway_agent), controls=3, seed=0
    )
    assert (result.trained.top, result.trained.random) == (0.0, 0.0)
    assert math.isnan(result.trained.top_ratio)
    assert math.isnan(result.p_value)


def test_the_deletion_p_value_counts_the_controls_at_or_above_the_trained_ratio() -> None:
    def ratio(value: float) -> trust.EntryDeletion:
        return trust.EntryDeletion(top=value, bottom=0.0, random=1.0)

    controls = tuple(ratio(v) for v in (1.0, 2.0, 3.0, math.nan))  # NaN: never changes
    assert trust.ControlledDeletion(ratio(2.0), controls).p_value == pytest.approx(3 / 5)
    assert trust.ControlledDeletion(ratio(9.0), controls).p_value == pytest.approx(1 / 5)
    assert trust.ControlledDeletion(ratio(0.5), controls).p_value == pytest.approx(4 / 5)


def test_a_permuted_module_keeps_every_tensor_s_values(freeway_agent: DreamerAgent) -> None:
    actor = freeway_agent.action_model
    permuted = trust.permuted_module(actor, seed=4)
    for (name, before), (_, after) in zip(
        actor.named_parameters(), permuted.named_parameters(), strict=True
    ):
        assert torch.equal(after.flatten().sort().values, before.flatten().sort().values)
        assert not torch.equal(after, before), name
    again = trust.permuted_module(actor, seed=4)
    pairs = zip(again.parameters(), permuted.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_a_permuted_actor_passes_the_deletion_check_about_as_often_as_its_level(
    freeway_agent: DreamerAgent,
) -> None:
    """A permuted actor is a draw from the check's own null: over 20 permutations, p <= 0.05
    about once (a binomial(20, 0.05) exceeds 4 with probability 0.003), while an actor that
    reads the top-ranked categorical reaches 0.05 every time."""
    inputs = _deletion_inputs(freeway_agent, states=200)
    passed = 0
    for seed in range(20):
        actor = trust.permuted_module(freeway_agent.action_model, seed=1000 + seed)
        passed += controlled_deletion(actor, *inputs, seed=seed).p_value <= 0.05
    assert passed <= 4
    reader = _reading(freeway_agent, [0]).action_model
    assert all(controlled_deletion(reader, *inputs, seed=seed).p_value <= 0.05 for seed in range(3))


# --- reward_correlation -----------------------------------------------------------------------


def test_the_reward_head_is_scored_on_the_transition_into_each_state(
    freeway_agent: DreamerAgent,
) -> None:
    import dataclasses

    from pytest_dreamer_audit.rollout.rollouts import run_rollouts

    trajectory = run_rollouts(freeway_agent, "freeway", episodes=3, steps=8, seed=1)
    assert freeway_agent.reward_decoder is not None
    features = torch.cat([trajectory.deter, trajectory.stoch.flatten(start_dim=2)], dim=-1)
    with torch.no_grad():
        predicted = freeway_agent.reward_decoder(features).squeeze(-1)  # [L, B]
    # rewards that the head predicts exactly, one step later: row t's reward is at state t + 1
    rewards = torch.zeros_like(trajectory.rewards)
    rewards[:-1] = 3 * predicted[1:] + 1
    exact = dataclasses.replace(trajectory, rewards=rewards)
    assert trust.reward_correlation(freeway_agent, exact) == pytest.approx(1.0)
    misaligned = torch.zeros_like(rewards)
    misaligned[1:] = predicted[1:]  # the same state's prediction: not what the head predicts
    shifted = dataclasses.replace(trajectory, rewards=misaligned)
    assert trust.reward_correlation(freeway_agent, shifted) < 0.9
    assert math.isnan(trust.reward_correlation(freeway_agent, trajectory))  # no reward at all
