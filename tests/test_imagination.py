from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_dreamer_audit.analysis.imagination import imagination_table, open_loop_states
from pytest_dreamer_audit.analysis.paired import (
    EXACT_EPISODES,
    SIGN_FLIP_DRAWS,
    roc_auc,
    sign_flip_p_values,
    sign_patterns,
)
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import CHECKPOINT_MODULES, DreamerAgent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.planted import (
    agent_from_state,
    permute_recurrent_core,
    reference_state,
    untrained_prior,
)
from pytest_dreamer_audit.results.assertions import (
    assert_imagination_beats_persistence,
    assert_reward_prediction,
)
from pytest_dreamer_audit.results.config import (
    DEFAULT_HORIZONS,
    MAX_HORIZON,
    ExplainConfig,
    read_horizons,
)
from pytest_dreamer_audit.results.explanation import load_explanation
from pytest_dreamer_audit.results.imagination import (
    ALL_CHANNELS,
    HeadPrediction,
    ImaginationTable,
    PredictionError,
)
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts
from pytest_dreamer_audit.testing import fake_explanation, tiny_agent, tiny_sizes

BUNDLED = Path(__file__).parents[1] / "examples" / "checkpoints" / "freeway_pomdp.pth"
FAST = {"rank": 3, "top_k": 2, "stability_refits": 0}


@pytest.fixture(scope="module")
def agent() -> DreamerAgent:
    return tiny_agent("freeway", pomdp=True, seed=3)


@pytest.fixture(scope="module")
def rollouts(agent: DreamerAgent) -> Trajectory:
    return run_rollouts(agent, episodes=3, steps=14, seed=5)


# --- settings -------------------------------------------------------------------------------


def test_horizons_default_off_and_stored_sorted() -> None:
    assert ExplainConfig().imagination == ()
    assert ExplainConfig(imagination=[10, 1, 5]).imagination == (1, 5, 10)


@pytest.mark.parametrize("bad", [(0,), (-1,), (MAX_HORIZON + 1,), (3, 3), ("3",), (True,), "1,2"])
def test_bad_horizons_are_refused_with_the_range(bad: object) -> None:
    with pytest.raises(ConfigError, match="imagination horizon"):
        ExplainConfig(imagination=bad)  # type: ignore[arg-type]


def test_horizon_out_of_range_names_the_valid_range() -> None:
    with pytest.raises(ConfigError, match=f"valid range 1 to {MAX_HORIZON}"):
        ExplainConfig(imagination=(0, 3))


@pytest.mark.parametrize(
    ("text", "horizons"),
    [
        ("off", ()),
        ("", ()),
        ("on", DEFAULT_HORIZONS),
        ("1,3,5,10", (1, 3, 5, 10)),
        ("5, 2", (2, 5)),
    ],
)
def test_read_horizons(text: str, horizons: tuple[int, ...]) -> None:
    assert read_horizons(text) == horizons


@pytest.mark.parametrize("text", ["abc", "1;2", "-1", "0", "51", "1,1"])
def test_read_horizons_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="imagination horizon"):
        read_horizons(text)


# --- the statistics -------------------------------------------------------------------------


def test_sign_flips_exact() -> None:
    patterns = sign_patterns(4, seed=0)
    assert patterns.shape == (16, 4)
    # every episode better: only the identity is as extreme -> 1/16
    p = sign_flip_p_values(np.array([[1.0], [2.0], [3.0], [4.0]]), patterns)
    assert p[0] == pytest.approx(1 / 16)
    # no difference at all: every pattern ties -> 1
    assert sign_flip_p_values(np.zeros((4, 1)), patterns)[0] == 1.0
    # worse in every episode: the identity is the least extreme
    assert sign_flip_p_values(-np.ones((4, 1)), patterns)[0] == 1.0


def test_sign_flips_drawn_above_the_exact_limit() -> None:
    episodes = EXACT_EPISODES + 4
    patterns = sign_patterns(episodes, seed=1)
    assert patterns.shape == (SIGN_FLIP_DRAWS, episodes)
    np.testing.assert_array_equal(patterns, sign_patterns(episodes, seed=1))  # seeded
    p = sign_flip_p_values(np.ones((episodes, 1)), patterns)[0]
    assert 1 / (1 + SIGN_FLIP_DRAWS) <= p < 0.01


def test_roc_auc() -> None:
    labels = np.array([False, False, True, True])
    assert roc_auc(np.array([0.1, 0.2, 0.3, 0.4]), labels) == 1.0
    assert roc_auc(np.array([0.4, 0.3, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(np.zeros(4), labels) == 0.5  # ties count half
    assert math.isnan(roc_auc(np.zeros(3), np.zeros(3, dtype=bool)))


# --- the computation ------------------------------------------------------------------------


def test_open_loop_is_batch_invariant_and_steps_the_prior(agent: DreamerAgent) -> None:
    s = agent.sizes
    gen = torch.Generator().manual_seed(0)
    classes = torch.randint(s.classes, (4, s.categoricals), generator=gen)
    stoch = torch.nn.functional.one_hot(classes, s.classes).float()
    deter = torch.randn(4, s.deter, generator=gen)
    actions = agent.one_hot_actions(torch.randint(s.actions, (3, 4), generator=gen))
    with torch.inference_mode():
        batched = open_loop_states(agent, stoch, deter, actions, (1, 3))
        single = [open_loop_states(agent, stoch[i : i + 1], deter[i : i + 1], actions[:, i : i + 1], (1, 3)) for i in range(4)]  # fmt: skip
        one_step = agent.rssm.transition(stoch.flatten(1), deter, actions[0])
    assert batched.shape == (2, 4, s.deter + s.stoch)
    torch.testing.assert_close(batched, torch.cat(single, dim=1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched[0, :, : s.deter], one_step)


def test_table_shape_and_values(agent: DreamerAgent, rollouts: Trajectory) -> None:
    table = imagination_table(agent, rollouts, rollouts.valid.bool(), (1, 3), seed=0)
    channels = agent.sizes.channels
    assert table.horizons == (1, 3)
    assert [(r.horizon, r.channel) for r in table.errors] == [
        (h, c) for h in (1, 3) for c in (ALL_CHANNELS, *range(channels))
    ]
    for row in table.errors:
        assert row.starts == rollouts.episodes * (rollouts.steps - row.horizon)
        for value in (row.model_nll, row.persistence_nll, row.randomized_nll, row.ceiling_nll):
            assert 0 <= value < 7  # at most -log(floor) per cell
        assert 0 < row.p_persistence <= 1
    assert [h.horizon for h in table.heads] == [1, 3]
    again = imagination_table(agent, rollouts, rollouts.valid.bool(), (1, 3), seed=0)
    assert again == table  # no random generator involved


def test_starts_follow_the_analysed_steps(agent: DreamerAgent, rollouts: Trajectory) -> None:
    analysed = rollouts.valid.bool().clone()
    analysed[:4] = False
    table = imagination_table(agent, rollouts, analysed, (2,), seed=0)
    assert table.error(2).starts == rollouts.episodes * (rollouts.steps - 4 - 2)


@pytest.mark.parametrize("horizons", [(14,), (1, 20)])
def test_horizon_beyond_the_rollouts_is_refused(
    agent: DreamerAgent, rollouts: Trajectory, horizons: tuple[int, ...]
) -> None:
    with pytest.raises(ConfigError, match="valid range is 1 to 13"):
        imagination_table(agent, rollouts, rollouts.valid.bool(), horizons, seed=0)


@pytest.mark.parametrize("missing", ["ObsDecoder", "RewardDecoder"])
def test_missing_head_is_named(rollouts: Trajectory, missing: str) -> None:
    headless = DreamerAgent(tiny_sizes(), heads=frozenset(CHECKPOINT_MODULES) - {missing})
    with pytest.raises(ConfigError, match=f"needs the checkpoint's {missing}"):
        imagination_table(headless, rollouts, rollouts.valid.bool(), (1,), seed=0)


def test_explain_off_costs_nothing_and_on_is_saved(
    agent: DreamerAgent, rollouts: Trajectory, tmp_path: Path
) -> None:
    off = explain(rollouts, ExplainConfig(**FAST), agent=agent)
    assert off.imagination is None
    assert json.loads(json.dumps(off.summary()))["imagination"] is None
    on = explain(rollouts, ExplainConfig(**FAST, imagination=(1, 2)), agent=agent)
    assert on.imagination is not None
    assert on.summary()["imagination"]["horizons"] == [1, 2]
    loaded = load_explanation(on.save(tmp_path / "e"))
    assert loaded.imagination == on.imagination
    assert loaded.config == on.config


def test_explain_with_imagination_needs_the_agent(rollouts: Trajectory) -> None:
    with pytest.raises(ConfigError, match="needs the agent"):
        explain(rollouts, ExplainConfig(**FAST, imagination=(1,)))


def test_table_json_round_trip(agent: DreamerAgent, rollouts: Trajectory) -> None:
    table = imagination_table(agent, rollouts, rollouts.valid.bool(), (1, 2), seed=0)
    text = json.dumps(table.to_json(), allow_nan=False)  # NaN (no reward) written as null
    back = ImaginationTable.from_json(json.loads(text))
    assert json.dumps(back.to_json()) == text  # NaN != NaN, so compare the JSON
    assert back.errors == table.errors
    with pytest.raises(ValueError, match="missing or unexpected"):
        PredictionError.from_json({"horizon": 1})


# --- the assertions -------------------------------------------------------------------------


def _row(**changes: float) -> PredictionError:
    values = dict(horizon=3, channel=ALL_CHANNELS, starts=100, changed_fraction=0.05,
                  model_nll=0.05, persistence_nll=0.1, randomized_nll=0.2, ceiling_nll=0.01,
                  model_changed_accuracy=0.9, randomized_changed_accuracy=0.5,
                  ceiling_changed_accuracy=1.0, p_persistence=0.001, p_randomized=0.001)  # fmt: skip
    values.update(changes)
    return PredictionError(**values)  # type: ignore[arg-type]


def _head(**changes: float) -> HeadPrediction:
    values = dict(horizon=3, starts=100, reward_events=5, reward_auc=0.95,
                  reward_persistence_auc=0.5, reward_randomized_auc=0.55,
                  reward_ceiling_auc=1.0, terminals=0, discount_auc=math.nan)  # fmt: skip
    values.update(changes)
    return HeadPrediction(**values)  # type: ignore[arg-type]


def _with(row: PredictionError, head: HeadPrediction, episodes: int = 8):  # type: ignore[no-untyped-def]
    table = ImaginationTable((3,), "exact sign flips", (row,), (head,))
    return dataclasses.replace(fake_explanation(episodes=episodes), imagination=table)


def test_imagination_assertion_passes_and_returns_the_row() -> None:
    row = _row()
    assert assert_imagination_beats_persistence(_with(row, _head()), horizon=3) == row


@pytest.mark.parametrize(
    ("changes", "beaten"),
    [
        ({"model_nll": 0.15}, "persistence"),
        ({"p_persistence": 0.2}, "persistence"),
        ({"p_randomized": math.nan}, "the randomized dynamics"),
    ],
)
def test_imagination_assertion_fails_naming_the_null(
    changes: dict[str, float], beaten: str
) -> None:
    with pytest.raises(AssertionError, match=f"does not beat {beaten}") as info:
        assert_imagination_beats_persistence(
            _with(_row(**changes), _head()), horizon=3, evidence="here"
        )
    assert "persistence 0.1000" in str(info.value)
    assert "Evidence: here" in str(info.value)


def test_imagination_assertion_says_when_too_few_episodes() -> None:
    explanation = _with(_row(p_persistence=0.125), _head(), episodes=3)
    with pytest.raises(AssertionError, match="no p-value can go below 0.125"):
        assert_imagination_beats_persistence(explanation, horizon=3)


def test_imagination_assertions_when_not_computed_or_unknown() -> None:
    with pytest.raises(AssertionError, match="--dreamer-imagination"):
        assert_imagination_beats_persistence(fake_explanation(), horizon=1)
    with pytest.raises(AssertionError, match="--dreamer-imagination"):
        assert_reward_prediction(fake_explanation(), horizon=1, min_auc=0.5)
    with pytest.raises(ConfigError, match="the horizons are 3"):
        assert_imagination_beats_persistence(_with(_row(), _head()), horizon=5)
    with pytest.raises(ConfigError, match="the horizons are 3"):
        assert_reward_prediction(_with(_row(), _head()), horizon=5, min_auc=0.5)


def test_reward_assertion() -> None:
    head = _head()
    assert assert_reward_prediction(_with(_row(), head), horizon=3, min_auc=0.9) == head
    with pytest.raises(AssertionError, match="below the required 0.990"):
        assert_reward_prediction(_with(_row(), head), horizon=3, min_auc=0.99)
    with pytest.raises(AssertionError, match="does not beat randomized dynamics"):
        assert_reward_prediction(
            _with(_row(), _head(reward_randomized_auc=0.97)), horizon=3, min_auc=0.5
        )
    with pytest.raises(AssertionError, match="undefined: 0 of 100"):
        assert_reward_prediction(
            _with(_row(), _head(reward_events=0, reward_auc=math.nan)), horizon=3, min_auc=0.5
        )


# --- planted models -------------------------------------------------------------------------


def test_planted_edits_touch_only_their_module(agent: DreamerAgent) -> None:
    state = reference_state(agent)
    core = permute_recurrent_core(state, seed=0)
    prior = untrained_prior(state, seed=0)
    for planted, prefix in ((core, "rnn."), (prior, "fc_prior.")):
        for key, module in state.items():
            for name, tensor in module.items():
                changed = not torch.equal(planted[key][name], tensor)
                assert changed == (key == "RSSM" and name.startswith(prefix)), (key, name)
    for name, tensor in core["RSSM"].items():  # a permutation keeps the values
        torch.testing.assert_close(
            tensor.flatten().sort().values, state["RSSM"][name].flatten().sort().values
        )


def test_tiny_planted_models_fail(agent: DreamerAgent) -> None:
    state = reference_state(agent)
    for planted in (permute_recurrent_core(state, 0), untrained_prior(state, 0)):
        model = agent_from_state(planted, agent)
        rolled = run_rollouts(model, episodes=6, steps=10, seed=2)
        config = ExplainConfig(**FAST, imagination=(1, 3))
        with pytest.raises(AssertionError, match="does not beat"):
            assert_imagination_beats_persistence(explain(rolled, config, agent=model), horizon=1)


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLED.exists(), reason="the bundled checkpoint is not here")
def test_bundled_agent_predicts_and_planted_models_fail() -> None:
    trained = load_checkpoint(BUNDLED)
    state = reference_state(trained)
    models = {
        "trained": trained,
        "permuted recurrent core": agent_from_state(permute_recurrent_core(state, 0), trained),
        "untrained prior": agent_from_state(untrained_prior(state, 0), trained),
    }
    for name, model in models.items():
        rolled = run_rollouts(model, episodes=6, steps=24, seed=8100)
        table = imagination_table(model, rolled, rolled.valid.bool(), (1, 5), seed=12345)
        explanation = dataclasses.replace(fake_explanation(episodes=6), imagination=table)
        for horizon in (1, 5):
            if name == "trained":
                assert_imagination_beats_persistence(explanation, horizon=horizon)
            else:
                with pytest.raises(AssertionError, match="does not beat persistence"):
                    assert_imagination_beats_persistence(explanation, horizon=horizon)


def test_bound_on_dreamer_audit(agent: DreamerAgent, tmp_path: Path) -> None:
    from pytest_dreamer_audit.plugin.audit import AuditResult
    from pytest_dreamer_audit.plugin.audit_object import DreamerAudit
    from pytest_dreamer_audit.report.records import AuditRecord
    from pytest_dreamer_audit.settings import AuditSettings

    rolled = run_rollouts(agent, episodes=3, steps=8, seed=4)
    explanation = explain(rolled, ExplainConfig(**FAST, imagination=(1, 2)), agent=agent)
    settings = AuditSettings(checkpoint="tiny.pth", rank=3, top_k=2, episodes=3, steps=8)
    result = AuditResult(settings, "key", tmp_path, explanation, ())
    record = AuditRecord("tiny.pth", "tiny", "key", "freeway", {}, explanation.metrics, 0.0, ())
    audit = DreamerAudit(
        explanation, result, tmp_path / "evidence", tmp_path / "b.json", False, record
    )
    with pytest.raises(AssertionError, match="Evidence: .*evidence"):
        audit.assert_imagination_beats_persistence(horizon=2, channel=1)
    with pytest.raises(AssertionError, match="reward prediction at horizon 1 is undefined"):
        audit.assert_reward_prediction(horizon=1, min_auc=0.5)
    assert [(c.assertion, c.passed) for c in audit.checks] == [
        ("assert_imagination_beats_persistence(horizon=2, channel=1)", False),
        ("assert_reward_prediction(horizon=1, min_auc=0.5)", False),
    ]


# --- pictures -------------------------------------------------------------------------------


def test_error_plot_and_filmstrip(agent: DreamerAgent, rollouts: Trajectory) -> None:
    from pytest_dreamer_audit.analysis.imagination import imagined_frames
    from pytest_dreamer_audit.report.imagination import render_filmstrip, render_imagination_plot

    table = imagination_table(agent, rollouts, rollouts.valid.bool(), (1, 3), seed=0)
    plot = render_imagination_plot(table, channel=1, width=400, height=200)
    assert plot.pixels.shape == (200, 400, 3)
    assert plot.png().startswith(b"\x89PNG")
    with pytest.raises(ConfigError, match="the channels 0, 1"):
        render_imagination_plot(table, channel=7)
    frames = imagined_frames(agent, rollouts, 1, (1, 3))
    assert frames.shape == (2, rollouts.steps, agent.sizes.channels, 10, 10)
    assert not frames[0, 0].any()
    assert not frames[1, :3].any()  # nothing is imagined for the first h steps
    assert frames[1, 3:].any()
    observations = rollouts.observations[:, 1].numpy()
    strip = render_filmstrip(observations, frames, (1, 3), (0, 1), [0, 4, 8])
    assert strip.pixels.shape[1] > strip.pixels.shape[0] / 3
    with pytest.raises(ConfigError, match="choose starts in 0 to 10"):
        render_filmstrip(observations, frames, (1, 3), (0, 1), [11])


def test_filmstrip_outlines_the_wrong_cells() -> None:
    from pytest_dreamer_audit.report.imagination import render_filmstrip

    observations = np.zeros((3, 1, 10, 10), dtype=bool)
    imagined = np.zeros((1, 3, 1, 10, 10), dtype=np.float32)
    imagined[0, 1, 0, 4, 7] = 0.9  # imagined a thing that is not there
    strip = render_filmstrip(observations, imagined, (1,), (0,), [0])
    cyan = (strip.pixels == [0, 255, 255]).all(axis=-1)
    rows, columns = np.nonzero(cyan)
    assert len(rows) == 4 * (6 - 1)  # one 6-pixel cell's border
    assert columns.max() - columns.min() == 5


def test_saved_table_must_match_the_config(
    agent: DreamerAgent, rollouts: Trajectory, tmp_path: Path
) -> None:
    from pytest_dreamer_audit.errors import SavedDataError

    on = explain(rollouts, ExplainConfig(**FAST, imagination=(1, 2)), agent=agent)
    target = on.save(tmp_path / "e")
    summary = json.loads((target / "summary.json").read_text())
    summary["imagination"]["horizons"] = [1]
    (target / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(
        SavedDataError, match=r"imagination horizons \[1\], config asks for \[1, 2\]"
    ):
        load_explanation(target)


def test_explain_refuses_up_front(rollouts: Trajectory, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_dreamer_audit.analysis.pipeline as pipeline

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("factorized before refusing")

    monkeypatch.setattr(pipeline, "fit_nmf", never)
    headless = DreamerAgent(tiny_sizes(), heads=frozenset(CHECKPOINT_MODULES) - {"ObsDecoder"})
    with pytest.raises(ConfigError, match="ObsDecoder"):
        explain(rollouts, ExplainConfig(**FAST, imagination=(1,)), agent=headless)
    with pytest.raises(ConfigError, match="valid range is 1 to 13"):
        explain(rollouts, ExplainConfig(**FAST, imagination=(20,)), agent=headless)


def test_the_imagination_picture_is_written_and_shown_by_the_cli(tmp_path: Path) -> None:
    """``dreamer-audit explain --imagination 1,2`` writes the error-against-horizon picture,
    shows it on its page and lists it among its own files; off, no such picture."""
    import json

    from pytest_dreamer_audit.cli import main
    from pytest_dreamer_audit.testing import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pth", seed=4)
    fast = ["--episodes", "4", "--steps", "8", "--rank", "3", "--top-k", "2",
            "--stability-refits", "0", "--render-episodes", "1", "--no-progress"]  # fmt: skip
    out = tmp_path / "on"
    assert main(["explain", str(checkpoint), "--out", str(out), "--imagination", "1,2", *fast]) == 0
    picture = (out / "imagination.png").read_bytes()
    assert picture.startswith(b"\x89PNG")
    assert (out / "imagination-filmstrip.png").read_bytes().startswith(b"\x89PNG")
    assert '<img src="imagination-filmstrip.png"' in (out / "index.html").read_text()
    page = (out / "index.html").read_text()
    assert '<img src="imagination.png"' in page
    assert "The world model&#x27;s imagination" in page or "The world model's imagination" in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["imagination"]["horizons"] == [1, 2]
    off = tmp_path / "off"
    assert main(["explain", str(checkpoint), "--out", str(off), *fast]) == 0
    assert not (off / "imagination.png").exists()
    assert not (off / "imagination-filmstrip.png").exists()
    assert "imagination.png" not in (off / "index.html").read_text()
