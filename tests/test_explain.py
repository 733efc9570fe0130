from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dreamer_audit.analysis.pipeline import _valid_rows, explain
from pytest_dreamer_audit.analysis.trust import matched_cosines
from pytest_dreamer_audit.errors import ConfigError, DreamerAuditError
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation, load_explanation
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


@pytest.fixture(scope="module")
def agent() -> DreamerAgent:
    return tiny_agent(seed=4)


@pytest.fixture(scope="module")
def trajectory(agent: DreamerAgent) -> Trajectory:
    return run_rollouts(agent, "freeway", episodes=6, steps=20, seed=3)


@pytest.fixture(scope="module")
def explained(agent: DreamerAgent, trajectory: Trajectory) -> Explanation:
    return explain(trajectory, ExplainConfig(rank=3, top_k=4), agent=agent)


def test_explanation_shapes_and_normalization(explained: Explanation) -> None:
    e = explained
    assert e.prototypes.shape == (3, 5)
    assert e.activations.shape == (20 * 6 * 4, 3)
    assert e.step_scores.shape == (20, 6, 4)
    assert e.observation_scores.shape == (20, 6)
    assert e.top_observations.shape == (6, 4)
    assert e.factor_examples.shape == (3, 4, 2)
    assert e.factor_activations.shape == (20, 6, 3)
    assert e.observation_scores.max() == pytest.approx(1.0)
    assert e.step_scores.max() == pytest.approx(1.0)
    assert e.row_scores.max() == pytest.approx(1.0)
    assert e.observation_scores.min() >= 0
    np.testing.assert_allclose(np.linalg.norm(e.prototypes, axis=1), 1.0, rtol=1e-5)
    # The top observations of each rollout really are its best-scored steps.
    for b in range(6):
        best = np.sort(e.observation_scores[:, b])[::-1][:4]
        np.testing.assert_allclose(e.observation_scores[e.top_observations[b], b], best)
    # Each factor's first example is the argmax of its activation over observations.
    for j in range(3):
        t, b = e.factor_examples[j, 0]
        assert e.factor_activations[t, b, j] == e.factor_activations[..., j].max()


def test_metrics_with_an_agent_are_all_finite(
    agent: DreamerAgent, trajectory: Trajectory, explained: Explanation
) -> None:
    # The default surprise score's picks do not depend on the NMF: no top-k Jaccard for it.
    assert math.isnan(explained.metrics.stability_topk_jaccard)
    config = ExplainConfig(rank=3, top_k=4, score="activation")
    m = explain(trajectory, config, agent=agent).metrics
    # A tiny agent never scores in these rollouts: no reward to check its reward head against.
    assert float(trajectory.rewards.sum()) == 0
    assert math.isnan(m.reward_correlation)
    values = [getattr(m, name) for name in m.__dataclass_fields__ if name != "reward_correlation"]
    assert all(math.isfinite(v) for v in values), m
    assert 0 <= m.relative_error < 0.5
    assert 0 <= m.stability_topk_jaccard <= 1
    assert -1 <= m.stability_min_cosine <= m.stability_mean_cosine <= 1
    assert m.deletion_ratio == pytest.approx(m.deletion_topk / m.deletion_random)


def test_without_an_agent_sanity_and_deletion_are_nan(trajectory: Trajectory) -> None:
    m = explain(trajectory, ExplainConfig(rank=3, stability_refits=0)).metrics
    assert math.isnan(m.sanity_spearman)
    assert math.isnan(m.deletion_ratio)
    assert math.isnan(m.stability_mean_cosine)
    assert math.isfinite(m.confidence_spearman)


def test_reconstruction_score_mostly_restates_confidence(trajectory: Trajectory) -> None:
    """Method defect 4: the notebook's score ranks rows almost exactly like ||p||_2."""
    recon = explain(trajectory, ExplainConfig(rank=3, score="reconstruction", stability_refits=0))
    active = explain(trajectory, ExplainConfig(rank=3, stability_refits=0))
    assert recon.metrics.confidence_spearman > 0.8  # 0.86 here; 0.99 at rank 10 of 20 classes
    assert active.metrics.confidence_spearman < recon.metrics.confidence_spearman


def test_deletion_is_zero_when_the_actor_ignores_the_stochastic_state(
    trajectory: Trajectory,
) -> None:
    blind = tiny_agent(seed=4)
    with torch.no_grad():
        first = blind.action_model.model[0]
        first.weight[:, blind.sizes.deter :] = 0.0  # the actor's stoch inputs
    m = explain(trajectory, ExplainConfig(rank=3, stability_refits=0), agent=blind).metrics
    assert m.deletion_topk == 0.0
    assert m.deletion_random == 0.0
    assert math.isnan(m.deletion_ratio)


@given(
    st.permutations(range(5)),
    st.sampled_from(["pooled", "per_step"]),
    st.sampled_from(["activation", "surprise"]),
)
@settings(max_examples=10, deadline=None)
def test_permuting_episodes_permutes_the_scores(order: list[int], layout: str, score: str) -> None:
    agent = tiny_agent(seed=6)
    base = run_rollouts(agent, "freeway", episodes=5, steps=8, seed=0)
    permuted = run_rollouts(
        agent, "freeway", episodes=5, steps=8, seeds=[base.seeds[i] for i in order]
    )
    config = ExplainConfig(rank=3, layout=layout, score=score, stability_refits=0)  # type: ignore[arg-type]
    a, b = explain(base, config), explain(permuted, config)
    # Equal up to the fit's float32 summation order, which can make the HALS stop land an
    # iteration apart (measured: at most 1.8e-4 here; a wrong permutation moves scores by ~0.1).
    np.testing.assert_allclose(b.observation_scores, a.observation_scores[:, order], atol=1e-3)


def test_save_and_load_round_trip(tmp_path: Path, explained: Explanation) -> None:
    explained.save(tmp_path / "out")
    loaded = load_explanation(tmp_path / "out")
    assert loaded.config == explained.config
    assert loaded.metrics == explained.metrics
    assert (loaded.game, loaded.seeds, loaded.action_names) == (
        "freeway",
        explained.seeds,
        ("noop", "up", "down"),
    )
    for name, array in explained.arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[name], array, err_msg=name)
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert '"rank": 3' in summary
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "explanation.npz",
        "summary.json",
    ]


def test_nan_metrics_are_written_as_null(tmp_path: Path, trajectory: Trajectory) -> None:
    e = explain(trajectory, ExplainConfig(rank=3, stability_refits=0))
    e.save(tmp_path)
    assert '"sanity_spearman": null' in (tmp_path / "summary.json").read_text()
    assert math.isnan(load_explanation(tmp_path).metrics.sanity_spearman)


def test_loading_a_damaged_explanation_is_a_package_error(
    tmp_path: Path, explained: Explanation
) -> None:
    with pytest.raises(DreamerAuditError, match="not a readable explanation"):
        load_explanation(tmp_path / "missing")
    explained.save(tmp_path)
    (tmp_path / "explanation.npz").write_bytes(b"garbage")
    with pytest.raises(DreamerAuditError, match="not a readable explanation"):
        load_explanation(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"score": "gradcam"},
            "unknown score 'gradcam'; choose from activation, reconstruction, surprise",
        ),
        ({"top_k": 0}, "top_k must be an integer >= 1, got 0"),
        ({"stability_refits": -1}, "stability_refits must be an integer >= 0, got -1"),
    ],
)
def test_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExplainConfig(**kwargs)  # type: ignore[arg-type]


def test_rank_above_the_classes_is_a_clear_error(trajectory: Trajectory) -> None:
    with pytest.raises(ConfigError, match="rank 6 is larger than the 5 columns"):
        explain(trajectory, ExplainConfig(rank=6))


@pytest.mark.gpu
def test_explain_on_cuda_matches_the_cpu_explanation(
    agent: DreamerAgent, trajectory: Trajectory, explained: Explanation
) -> None:
    gpu_agent = copy.deepcopy(agent).to("cuda")
    gpu = explain(trajectory.to("cuda"), ExplainConfig(rank=3, top_k=4), agent=gpu_agent)
    # Same inputs, different float rounding: the fits may stop at other iterations and near
    # ties may swap a top-k pick, so compare with tolerances that such differences respect.
    np.testing.assert_allclose(gpu.observation_scores, explained.observation_scores, atol=2e-2)
    cosines = matched_cosines(
        torch.from_numpy(explained.prototypes), torch.from_numpy(gpu.prototypes)
    )
    assert float(cosines.min()) > 0.99
    cpu_metrics, gpu_metrics = explained.metrics, gpu.metrics
    assert gpu_metrics.relative_error == pytest.approx(cpu_metrics.relative_error, abs=1e-3)
    assert gpu_metrics.deletion_ratio == pytest.approx(cpu_metrics.deletion_ratio, rel=0.1)


def test_the_valid_rows_are_a_view_when_every_step_is_valid() -> None:
    # The deletion control reads the two logit tensors' valid rows: with every step valid they
    # are the tensors themselves, time-major (no 2 x 82 MB copies at 1024 x 50, issue 33).
    values = torch.arange(4 * 3 * 2, dtype=torch.float32).reshape(4, 3, 2)
    every = torch.ones(4, 3, dtype=torch.bool)
    rows = _valid_rows(values, every)
    assert torch.equal(rows, values[every])
    assert rows.data_ptr() == values.data_ptr()  # a view
    some = every.clone()
    some[3, 1] = some[0, 2] = False
    assert torch.equal(_valid_rows(values, some), values[some])
    assert _valid_rows(values, some).shape == (10, 2)
