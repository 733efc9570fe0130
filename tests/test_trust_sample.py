"""The replaying trust checks run on the first ``ExplainConfig.trust_episodes`` episodes
(``analysis/pipeline.py``, issue 33): what they replay, what stays the explanation's, the probes'
control over every episode, and how the reports name the sample."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_dreamer_audit.analysis import pipeline
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.report.html import metrics_table
from pytest_dreamer_audit.report.page import index_page
from pytest_dreamer_audit.report.records import AuditRecord
from pytest_dreamer_audit.results.config import trust_sample_size
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation, load_explanation
from pytest_dreamer_audit.results.trustworthy import sample_label
from pytest_dreamer_audit.results.values import TrustMetrics
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts
from pytest_dreamer_audit.settings import AuditSettings
from pytest_dreamer_audit.testing import tiny_agent

SAMPLED = (
    "sanity_spearman",
    "sanity_entropy",
    "sanity_posterior_max_abs",
    "sanity_posterior_mean_abs",
    "sanity_posterior_std",
    "memory_max_abs",
    "memory_mean_abs",
    "deletion_entry_ratio",
    "deletion_control_median",
    "deletion_control_max",
    "deletion_p_value",
    "deletion_bottom_ratio",
)
"""The metrics of the replaying checks: the sample's (every other metric is every episode's)."""


# ``agent`` and ``trajectory``: conftest's tiny agent and its 3 x 12 rollouts, seeds 9-11.


def _explain(trajectory: Trajectory, agent: DreamerAgent, trust: int, **kw: Any) -> Explanation:
    config = ExplainConfig(rank=3, top_k=4, stability_refits=1, trust_episodes=trust, **kw)
    return explain(trajectory, config, agent=agent)


@pytest.fixture(scope="module")
def every(agent: DreamerAgent, trajectory: Trajectory) -> Explanation:
    return _explain(trajectory, agent, 0)


def test_a_sample_as_large_as_the_rollouts_is_every_episode(
    agent: DreamerAgent,
    trajectory: Trajectory,
    every: Explanation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replayed = []
    real = pipeline.streamed_replays

    def spy(agent: DreamerAgent, t: Trajectory, *args: Any, **kwargs: Any) -> Any:
        replayed.append(t)
        return real(agent, t, *args, **kwargs)

    monkeypatch.setattr(pipeline, "streamed_replays", spy)
    for trust in (3, 16):
        assert _explain(trajectory, agent, trust).metrics.to_json() == every.metrics.to_json()
    # the trajectory itself, not a copy of its episodes with a fit of its own (pipeline
    # _trust_sample's `count < episodes`: a sample of every episode is no sample)
    assert all(t is trajectory for t in replayed)
    assert len(replayed) == 2
    assert ExplainConfig().trust_episodes == 16
    assert [trust_sample_size(6, t) for t in (0, 1, 2, 6, 16)] == [6, 1, 2, 6, 6]


def test_the_replaying_checks_see_only_the_first_episodes(
    agent: DreamerAgent,
    trajectory: Trajectory,
    every: Explanation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    def spy(name: str, record: Any) -> None:
        real = getattr(pipeline, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            seen[name] = record(*args)
            return real(*args, **kwargs)

        monkeypatch.setattr(pipeline, name, wrapped)

    spy("streamed_replays", lambda _agent, t, *_: t.seeds)
    spy("measure_posterior_sanity", lambda _agent, t, valid, *_: (t.seeds, tuple(valid.shape)))
    spy("controlled_deletion", lambda _actor, deter, *_: deter.shape[0])
    spy("reward_correlation", lambda _agent, t: t.seeds)
    sampled = _explain(trajectory, agent, 2)
    assert seen["streamed_replays"] == (9, 10)
    assert seen["measure_posterior_sanity"] == ((9, 10), (12, 2))
    assert seen["controlled_deletion"] == int(trajectory.valid[:, :2].sum())
    assert seen["reward_correlation"] == trajectory.seeds  # not a replay: every episode
    # The explanation, its stability and its deletion ratio are every episode's ...
    for name in ("observation_scores", "step_scores", "top_observations", "factor_stability"):
        np.testing.assert_array_equal(getattr(sampled, name), getattr(every, name))
    others = set(TrustMetrics.__dataclass_fields__) - set(SAMPLED)
    assert {n: getattr(sampled.metrics, n) for n in others} == pytest.approx(
        {n: getattr(every.metrics, n) for n in others}, nan_ok=True, rel=0, abs=0
    )
    # ... the replaying checks' are the sample's, and differ here.
    assert [getattr(sampled.metrics, n) for n in SAMPLED] != [
        getattr(every.metrics, n) for n in SAMPLED
    ]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"layout": "per_step", "score": "activation"},
        {"skip_steps": 3, "randomization": "cascade"},
    ],
)
def test_the_sampled_checks_are_an_audit_of_the_first_episodes(
    agent: DreamerAgent, trajectory: Trajectory, kw: dict[str, Any]
) -> None:
    """Exactly the checks a 2-episode audit of the same episodes computes (its own fit: a
    refit compared with the main fit of 3 episodes would compare two different fits)."""
    sampled = _explain(trajectory, agent, 2, **kw)
    alone = _explain(trajectory.select_episodes([0, 1]), agent, 0, **kw)
    for name in SAMPLED:
        assert getattr(sampled.metrics, name) == pytest.approx(
            getattr(alone.metrics, name), nan_ok=True, rel=1e-6
        ), name
    assert len(sampled.randomization) == len(alone.randomization) >= 1
    for mine, theirs in zip(sampled.randomization, alone.randomization, strict=True):
        assert (mine.kind, mine.layers) == (theirs.kind, theirs.layers)
        for value in ("entropy", "observation_spearman", "prototype_cosine"):
            assert getattr(mine, value) == pytest.approx(getattr(theirs, value), rel=1e-6)


def test_the_probes_control_still_covers_every_episode(
    agent: DreamerAgent, trajectory: Trajectory
) -> None:
    sampled = _explain(trajectory, agent, 2, probes=True)
    full = _explain(trajectory, agent, 0, probes=True)
    assert sampled.probes
    assert len(sampled.probes) == len(full.probes)
    for mine, theirs in zip(sampled.probes, full.probes, strict=True):
        a, b = mine.to_json(), theirs.to_json()
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, float):
                assert value == pytest.approx(b[key], abs=1e-5), (mine, key)
            else:
                assert value == b[key], (mine, key)


def test_select_episodes_takes_every_tensor_in_order(trajectory: Trajectory) -> None:
    picked = trajectory.select_episodes([2, 0])
    assert picked.seeds == (11, 9)
    assert picked.episodes == 2
    for name, tensor in picked.tensors().items():
        assert tensor.is_contiguous()
        whole = getattr(trajectory, name)
        assert bool((tensor[:, 0] == whole[:, 2]).all()), name
        assert bool((tensor[:, 1] == whole[:, 0]).all()), name
    for bad, message in (
        ([], "select_episodes needs distinct episodes, got \\[\\]"),
        ([1, 1], "select_episodes needs distinct episodes, got \\[1, 1\\]"),
        ([0, 3], "select_episodes got episodes \\[0, 3\\]; this trajectory has 3"),
        ([-1], "select_episodes got episodes \\[-1\\]; this trajectory has 3"),
    ):
        with pytest.raises(ConfigError, match=message):
            trajectory.select_episodes(bad)


def test_the_sample_skips_episodes_with_no_step_to_explain() -> None:
    """Breakout episodes end early; with 6 steps skipped the first ones have nothing left to
    explain: the sample is the first episodes that do (the review's crash: a fit of no rows)."""
    agent = tiny_agent("breakout", seed=4)
    trajectory = run_rollouts(agent, "breakout", episodes=5, steps=24, seed=3)
    lengths = trajectory.valid.sum(dim=0).tolist()
    explained = [b for b, n in enumerate(lengths) if n > 6]
    assert lengths[0] <= 6  # the first episode ends within the skipped steps
    assert len(explained) >= 2
    sampled = _explain(trajectory, agent, 1, skip_steps=6)
    alone = _explain(trajectory.select_episodes(explained[:1]), agent, 0, skip_steps=6)
    for name in SAMPLED:
        assert getattr(sampled.metrics, name) == pytest.approx(
            getattr(alone.metrics, name), nan_ok=True, rel=1e-6
        ), name


@pytest.mark.parametrize("value", [-1, True, 1.5])
def test_trust_episodes_must_be_a_count(value: object) -> None:
    with pytest.raises(ConfigError, match=f"trust_episodes must be an integer >= 0, got {value}"):
        ExplainConfig(trust_episodes=value)  # type: ignore[arg-type]


def test_the_reports_name_the_sample(tmp_path: Path, every: Explanation) -> None:
    label = "checks 3, 4, 6 and 7 and the randomization stages on the first 16 of 64 episodes"
    assert sample_label(16, 64) == label
    assert sample_label(3, 3).endswith("randomization stages on all 3 episodes")
    sampled = dataclasses.replace(every, config=dataclasses.replace(every.config, trust_episodes=2))
    page = index_page(sampled, [])
    shown = "checks 3, 4, 6 and 7 and the randomization stages on the first 2 of 3 episodes"
    assert f"<th>trust checks</th><td>{shown}</td>" in page
    assert f'<p>{shown}</p>\n<table class="dreamer-audit-randomization">' in page
    assert "on all 3 episodes" in index_page(every, [])
    without_agent = dataclasses.replace(every, randomization=())
    assert "not run (explained without the agent)" in index_page(without_agent, [])
    settings = AuditSettings(checkpoint="a.pth", episodes=64)
    record = AuditRecord(
        checkpoint="a.pth",
        label="a",
        key="k",
        game="freeway",
        settings=dataclasses.asdict(settings),
        metrics=TrustMetrics(relative_error=0.25, explained_variance=0.5, iterations=60),
        mean_return=1.0,
        images=(),
    )
    assert f"(<code>assert_trustworthy</code>; {label})" in metrics_table(record)
    older = {k: v for k, v in record.settings.items() if k != "trust_episodes"}  # an old record
    bare = dataclasses.replace(record, settings=older)
    assert "(<code>assert_trustworthy</code>)</p>" in metrics_table(bare)


def test_an_explanation_saved_before_the_sample_ran_its_checks_on_every_episode(
    tmp_path: Path, every: Explanation
) -> None:
    every.save(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    del summary["config"]["trust_episodes"]  # as written before the setting existed
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert load_explanation(tmp_path).config.trust_episodes == 0


def test_the_probe_control_needs_the_replays_states(
    agent: DreamerAgent, trajectory: Trajectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal invariant, named if it breaks: the replay asked for its states has them."""
    from pytest_dreamer_audit.analysis.replays import RandomizedReplay

    def stateless(_agent: Any, t: Trajectory, *_args: Any, **_kwargs: Any) -> Any:
        yield RandomizedReplay(t.posterior_logits.clone(), t.prior_logits.clone(), None)

    monkeypatch.setattr(pipeline, "streamed_replays", stateless)
    with pytest.raises(
        ValueError, match=r"^the probes' control replays the deterministic states too$"
    ):
        pipeline._probe_control(agent, trajectory, trajectory.valid.bool(), 0)


def test_the_full_stage_and_the_sanity_seeds(
    agent: DreamerAgent, trajectory: Trajectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pinned against mutants of ``pipeline._randomization`` (mutation run of session 14): the
    full stage comes first under its name, its refit gets the main fit's iteration budget
    (at least 10), and the posterior sanity check reports all five seeds, the first being the
    full stage's."""
    budgets: list[int] = []
    real_score = pipeline._score

    def score(rows: Any, valid: Any, kl: Any, config: ExplainConfig, nmf: Any) -> Any:
        budgets.append(nmf.max_iter)
        return real_score(rows, valid, kl, config, nmf)

    sanity: list[Any] = []
    real_sanity = pipeline.measure_posterior_sanity

    def measure(*args: Any, **kwargs: Any) -> Any:
        sanity.append(real_sanity(*args, **kwargs))
        return sanity[-1]

    monkeypatch.setattr(pipeline, "_score", score)
    monkeypatch.setattr(pipeline, "measure_posterior_sanity", measure)
    e = _explain(trajectory, agent, 0)
    first = e.randomization[0]
    assert (first.kind, first.layers) == ("full", "all layers")
    # main fit, one stability refit (config caps), then the full stage's budget
    assert budgets[:2] == [ExplainConfig().max_iter] * 2
    assert budgets[2] == max(e.metrics.iterations, 10) < ExplainConfig().max_iter
    (result,) = sanity
    assert len(result.randomized) == 5
    assert e.metrics.sanity_posterior_max_abs == max(result.randomized)


def test_the_probes_control_is_the_full_stage_with_the_cascade(
    agent: DreamerAgent, trajectory: Trajectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the cascade, later stages replay states too; the probes' control stays the full
    stage's (the same latents as its own replay, ``_probe_control``)."""
    seen: list[tuple[Any, Any]] = []
    real = pipeline.probe_facts

    def probe(explanation: Any, t: Any, valid: Any, probs: Any, deter: Any) -> Any:
        seen.append((probs, deter))
        return real(explanation, t, valid, probs, deter)

    monkeypatch.setattr(pipeline, "probe_facts", probe)
    _explain(trajectory, agent, 0, probes=True, randomization="cascade")
    ((probs, deter),) = seen
    valid = trajectory.valid.bool()
    expected_probs, expected_deter = pipeline._probe_control(
        agent, trajectory, valid, ExplainConfig().sanity_seed
    )
    np.testing.assert_allclose(probs.numpy(), expected_probs.numpy(), atol=1e-5)
    np.testing.assert_allclose(deter.numpy(), expected_deter.numpy(), atol=1e-5)


def test_the_full_stage_needs_the_replays_prior(
    agent: DreamerAgent, trajectory: Trajectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal invariant, named if it breaks: the full stage scores surprise, so its
    replay must carry the prior."""
    from pytest_dreamer_audit.analysis.replays import RandomizedReplay

    def priorless(_agent: Any, t: Trajectory, seeds: Any, *_args: Any, **_kwargs: Any) -> Any:
        for _ in seeds:
            yield RandomizedReplay(t.posterior_logits.clone())

    monkeypatch.setattr(pipeline, "streamed_replays", priorless)
    with pytest.raises(
        ValueError, match=r"^the randomization stages score surprise: replay the prior too$"
    ):
        _explain(trajectory, agent, 0)
