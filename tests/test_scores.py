from __future__ import annotations

import math

import pytest
import torch

from pytest_dreamer_audit.analysis import scores
from pytest_dreamer_audit.analysis.factorize import Factorization, flatten_posteriors
from pytest_dreamer_audit.analysis.scores import (
    categorical_scores,
    factor_activations,
    normalize_valid,
    observation_scores,
    surprise,
    top_observations,
)


def _fit(activations: torch.Tensor, prototypes: torch.Tensor) -> Factorization:
    return Factorization(activations, prototypes, 1, 0.0, 1.0)


def test_surprise_is_the_categorical_kl() -> None:
    post = torch.log(torch.tensor([[[[0.5, 0.5]]]]))
    prior = torch.log(torch.tensor([[[[0.9, 0.1]]]]))
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert float(surprise(post, prior)[0, 0, 0]) == pytest.approx(expected, rel=1e-6)
    assert float(surprise(post, post)[0, 0, 0]) == 0.0


def test_surprise_in_chunks_of_steps_is_the_whole_computation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generator = torch.Generator().manual_seed(0)
    posterior, prior = torch.randn(2, 7, 3, 4, 5, generator=generator)
    whole = surprise(posterior, prior)
    monkeypatch.setattr(scores, "_CHUNK_ENTRIES", 2 * 3 * 4 * 5)  # two steps per chunk
    torch.testing.assert_close(surprise(posterior, prior), whole, rtol=0, atol=0)


def test_pooled_activation_and_reconstruction_scores_by_hand() -> None:
    probs = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # L=1, B=1, C=2, K=2
    rows = flatten_posteriors(probs, torch.ones(1, 1, dtype=torch.bool), "pooled")
    activations = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    act = categorical_scores("activation", rows, _fit(activations, prototypes))
    assert act.tolist() == [[[5.0, 2.0]]]
    rec = categorical_scores("reconstruction", rows, _fit(activations, prototypes))
    assert rec.tolist() == [[[5.0, 2.0]]]
    assert observation_scores("activation", act).item() == pytest.approx(math.sqrt(29.0))


def test_per_step_activation_splits_the_mass_by_prototype_blocks() -> None:
    probs = torch.full((1, 1, 2, 2), 0.5)
    rows = flatten_posteriors(probs, torch.ones(1, 1, dtype=torch.bool), "per_step")
    # Factor 0 lives in categorical 0's block, factor 1 spreads evenly over both blocks.
    prototypes = torch.tensor([[0.6, 0.8, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    activations = torch.tensor([[2.0, 4.0]])
    scores = categorical_scores("activation", rows, _fit(activations, prototypes))
    block0 = math.sqrt((2 * 1.0) ** 2 + (4 * math.sqrt(0.5)) ** 2)
    block1 = math.sqrt((4 * math.sqrt(0.5)) ** 2)
    torch.testing.assert_close(scores[0, 0], torch.tensor([block0, block1]))
    # The categorical shares add up (in squares) to the row's activation norm.
    torch.testing.assert_close(observation_scores("activation", scores)[0, 0], activations.norm())


def test_surprise_scores_sum_over_categoricals_and_ignore_invalid_steps() -> None:
    kl = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])  # L=2, B=1, C=2
    valid = torch.tensor([[True], [False]])
    rows = flatten_posteriors(torch.full((2, 1, 2, 3), 1 / 3), valid, "pooled")
    per_cat = categorical_scores("surprise", rows, _fit(torch.ones(2, 1), torch.ones(1, 3)), kl)
    assert per_cat.tolist() == [[[1.0, 2.0]], [[0.0, 0.0]]]
    assert observation_scores("surprise", per_cat).tolist() == [[3.0], [0.0]]


def test_normalize_valid_maps_the_peak_to_one_and_invalid_to_zero() -> None:
    values = torch.tensor([[2.0, 8.0], [4.0, 100.0]])
    valid = torch.tensor([[True, True], [True, False]])
    assert normalize_valid(values, valid).tolist() == [[0.25, 1.0], [0.5, 0.0]]


def test_top_observations_are_ranked_per_rollout_and_padded() -> None:
    scores = torch.tensor([[0.1, 0.9], [0.7, 0.2], [0.3, 0.5]])
    valid = torch.tensor([[True, True], [True, False], [True, False]])
    assert top_observations(scores, valid, 2).tolist() == [[1, 2], [0, -1]]
    assert top_observations(scores, valid, 4).tolist() == [[1, 2, 0, -1], [0, -1, -1, -1]]


def test_factor_activations_take_the_strongest_row_of_each_observation() -> None:
    probs = torch.full((2, 2, 2, 2), 0.5)
    valid = torch.tensor([[True, True], [True, False]])
    rows = flatten_posteriors(probs, valid, "pooled")  # rows: (0,0,c) (0,1,c) (1,0,c)
    activations = torch.tensor(
        [[0.1, 0.0], [0.2, 0.0], [0.0, 0.9], [0.3, 0.1], [0.5, 0.0], [0.0, 0.4]]
    )
    per_obs = factor_activations(rows, _fit(activations, torch.eye(2)))
    torch.testing.assert_close(per_obs[..., 0], torch.tensor([[0.2, 0.3], [0.5, 0.0]]))
    torch.testing.assert_close(per_obs[..., 1], torch.tensor([[0.0, 0.9], [0.4, 0.0]]))
