"""CPU smoke tests of ``research/train_reference_agent.py`` with a tiny agent (a few seconds)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from tests.research_scripts import import_research

SCRIPT = Path(__file__).resolve().parents[1] / "research" / "train_reference_agent.py"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trainer() -> ModuleType:
    """The example script, imported from its path."""
    return import_research("train_reference_agent")


@pytest.fixture(autouse=True)
def _keep_torch_globals() -> Iterator[None]:
    """``train`` seeds torch and sets its thread count; give the other tests theirs back."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        yield
    torch.set_num_threads(threads)


def tiny_args(trainer: ModuleType, tmp_path: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "total_env_steps": 1_000,
        "num_envs": 4,
        "prefill_steps": 400,
        "train_every": 40,
        "train_steps": 2,
        "batch_size": 4,
        "seq_len": 10,
        "horizon": 5,
        "replay_capacity": 2_000,
        "deter": 16,
        "categoricals": 4,
        "classes": 4,
        "embedding": 32,
        "node": 16,
        "depth": 4,
        "hidden": 16,
        "layers": 1,
        "checkpoint": str(tmp_path / "agent.pth"),
        "log_interval": 400,
        "save_interval_s": 1e9,
        "progress": False,
    }
    return trainer.Args(**(values | overrides))


def filled_replay(trainer: ModuleType, args: Any, lockstep_rows: int) -> Any:
    rng = np.random.default_rng(0)
    envs = trainer.Envs(args, rng)
    replay = trainer.Replay(args.replay_capacity, args.num_envs, (2, 10, 10), 3)
    rows = envs.rows
    for _ in range(lockstep_rows):
        replay.add(rows)
        rows, _, _ = envs.step(trainer.prefill_actions(args, args.num_envs, rng))
    return replay


def test_world_model_loss_falls_on_a_fixed_batch(trainer: ModuleType, tmp_path: Path) -> None:
    args = tiny_args(trainer, tmp_path, model_lr=3e-3, batch_size=8, seq_len=12)
    replay = filled_replay(trainer, args, lockstep_rows=60)
    batch = replay.sample(args.batch_size, args.seq_len, np.random.default_rng(1), CPU)
    torch.manual_seed(0)
    learner = trainer.Learner(trainer.build_agent(args.model_sizes(), seed=0), args)
    # The Gaussian NLLs include constants; only what is above them can be learned away.
    floor = (200 + 1) * trainer.HALF_LOG_2PI
    losses = [learner.train_step(batch)["wm_loss"].item() - floor for _ in range(40)]
    early, late = np.mean(losses[:5]), np.mean(losses[-5:])
    assert late < 0.6 * early, f"world-model loss above its floor went {early:.3f} -> {late:.3f}"
    assert all(math.isfinite(loss) for loss in losses)


def _snapshot(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _changed(before: list[torch.Tensor], params: list[torch.nn.Parameter]) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))


def test_a_frozen_world_model_stays_as_it_is_while_the_actor_and_critic_learn(
    trainer: ModuleType, tmp_path: Path
) -> None:
    args = tiny_args(trainer, tmp_path, freeze_world_model=True, actor_critic_steps=3)
    replay = filled_replay(trainer, args, lockstep_rows=30)
    batch = replay.sample(args.batch_size, args.seq_len, np.random.default_rng(1), CPU)
    learner = trainer.Learner(trainer.build_agent(args.model_sizes(), seed=0), args)
    world, actor = _snapshot(learner.world_params), _snapshot(learner.actor_params)
    critic = _snapshot(learner.critic_params)
    metrics = learner.train_step(batch)
    assert all(torch.equal(b, p) for b, p in zip(world, learner.world_params, strict=True))
    assert _changed(actor, learner.actor_params)
    assert _changed(critic, learner.critic_params)
    assert "wm_grad_norm" not in metrics
    assert math.isfinite(metrics["wm_loss"].item())
    assert learner.optimizers["model"].state == {}  # Adam never stepped the world model
    assert learner.gradient_steps == 1
    assert learner.critic_updates == 3
    adam = learner.optimizers["actor"].state[learner.actor_params[0]]
    assert int(adam["step"]) == 3


def test_one_step_values_score_each_action_by_its_imagined_next_state(
    trainer: ModuleType, tmp_path: Path
) -> None:
    args = tiny_args(trainer, tmp_path)
    agent = trainer.build_agent(args.model_sizes(), seed=3)
    critic = agent.value_model
    start = agent.initial_state(5)
    start = start._replace(deter=torch.randn(5, args.deter))
    with torch.no_grad():
        torch.manual_seed(7)
        q = trainer.one_step_values(agent, critic, start, 0.9)
        torch.manual_seed(7)  # the batched prior draws the actions' samples in this order
        every = trainer.LatentState(*(part.repeat(3, *([1] * (part.dim() - 1))) for part in start))
        nxt = agent.imagine(every, agent.one_hot_actions(torch.arange(3).repeat_interleave(5)))
        expected = []
        for a in range(3):
            features = nxt.model_state[a * 5 : (a + 1) * 5]
            reward = agent.reward_decoder(features).squeeze(-1)
            alive = torch.sigmoid(agent.discount_model(features).squeeze(-1))
            expected.append(reward + 0.9 * alive * critic(features).squeeze(-1))
    assert q.shape == (5, 3)
    torch.testing.assert_close(q, torch.stack(expected, -1))
    assert float(q.std()) > 0  # the actions and the states are told apart


def _gap_closed(trainer: ModuleType, tmp_path: Path, actor_gradient: str) -> float:
    """Share of the gap between the policy's expected one-step value and the best action's that
    30 actor steps close, on the posteriors of one fixed batch (frozen world model and target;
    the values averaged over 64 prior draws)."""
    args = tiny_args(
        trainer,
        tmp_path,
        actor_gradient=actor_gradient,
        actor_lr=1e-2,
        actor_entropy_scale=0.0,
        freeze_world_model=True,
    )
    replay = filled_replay(trainer, args, lockstep_rows=30)
    batch = replay.sample(args.batch_size, args.seq_len, np.random.default_rng(1), CPU)
    torch.manual_seed(0)
    learner = trainer.Learner(trainer.build_agent(args.model_sizes(), seed=0), args)
    agent, target = learner.agent, learner.target_critic
    with torch.no_grad():
        posterior = trainer.world_model_loss(agent, batch, args).posterior
        draws = [
            trainer.one_step_values(agent, target, posterior, args.discount) for _ in range(64)
        ]
        q = torch.stack(draws).mean(0)

    def expected_value() -> float:
        with torch.no_grad():
            policy = torch.softmax(agent.policy_logits(posterior), -1)
        return float((policy * q).sum(-1).mean())

    before = expected_value()
    for _ in range(30):
        learner.train_step(batch)
    return (expected_value() - before) / (float(q.max(-1).values.mean()) - before)


def test_the_lookahead_actor_closes_more_of_the_gap_to_the_best_action_than_reinforce(
    trainer: ModuleType, tmp_path: Path
) -> None:
    # Measured: lookahead 0.46, REINFORCE 0.12 of the gap (REINFORCE's one sampled action per
    # state is the noise the lookahead's expectation removes).
    lookahead = _gap_closed(trainer, tmp_path, "lookahead")
    reinforce = _gap_closed(trainer, tmp_path, "reinforce")
    assert lookahead > 0.3
    assert lookahead > 2 * reinforce


def test_an_unknown_actor_gradient_is_refused(trainer: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(trainer.ConfigError, match="reinforce, lookahead"):
        tiny_args(trainer, tmp_path, actor_gradient="dynamics")


def test_the_slow_target_follows_the_critic_per_critic_update(
    trainer: ModuleType, tmp_path: Path
) -> None:
    args = tiny_args(trainer, tmp_path, actor_critic_steps=2, slow_target_update=4)
    replay = filled_replay(trainer, args, lockstep_rows=30)
    batch = replay.sample(args.batch_size, args.seq_len, np.random.default_rng(1), CPU)
    learner = trainer.Learner(trainer.build_agent(args.model_sizes(), seed=0), args)
    assert learner.agent.value_model is not None
    critic = learner.agent.value_model.parameters
    learner.train_step(batch)  # critic updates 1, 2: the target still holds the first critic
    assert not all(
        torch.equal(t, c) for t, c in zip(learner.target_critic.parameters(), critic(), strict=True)
    )
    learner.train_step(batch)  # updates 3, 4: copied at the 4th
    assert all(
        torch.equal(t, c) for t, c in zip(learner.target_critic.parameters(), critic(), strict=True)
    )
    assert learner.critic_updates == 4
    assert learner.gradient_steps == 2


def test_lambda_returns_limits(trainer: ModuleType) -> None:
    reward = torch.tensor([[1.0], [2.0], [3.0]])
    value = torch.tensor([[10.0], [20.0], [30.0]])  # values of s_1, s_2, s_3
    gamma = torch.full((3, 1), 0.5)
    monte_carlo = trainer.lambda_returns(reward, value, gamma, 1.0)
    assert monte_carlo[0].item() == pytest.approx(1 + 0.5 * (2 + 0.5 * (3 + 0.5 * 30)))
    one_step = trainer.lambda_returns(reward, value, gamma, 0.0)
    assert one_step[:, 0].tolist() == pytest.approx([1 + 5.0, 2 + 10.0, 3 + 15.0])


def test_replay_windows_are_consecutive_after_the_ring_wraps(
    trainer: ModuleType, tmp_path: Path
) -> None:
    args = tiny_args(trainer, tmp_path, replay_capacity=40, num_envs=2, seq_len=5)
    replay = trainer.Replay(args.replay_capacity, args.num_envs, (2, 10, 10), 3)
    for t in range(53):  # 20 rows per env: wraps twice and a bit
        zeros = np.zeros(2, dtype=bool)
        obs = np.zeros((2, 2, 10, 10), dtype=bool)
        replay.add(
            trainer.Rows(obs, np.zeros(2, np.int64), np.full(2, t, np.float32), zeros, zeros)
        )
    batch = replay.sample(64, 5, np.random.default_rng(0), CPU)
    steps = batch.reward  # [L, B]: the step each row was written at
    assert torch.all(steps[1:] - steps[:-1] == 1), "a window jumped across the write position"
    assert steps.min().item() >= 53 - 20, "a window reached rows already overwritten"


def test_parse_args_builds_args_from_kebab_case_options(trainer: ModuleType) -> None:
    args = trainer.parse_args(["--batch-size", "8", "--no-pomdp", "--model-lr", "1e-3"])
    assert (args.batch_size, args.pomdp, args.model_lr) == (8, False, 1e-3)
    assert trainer.parse_args([]) == trainer.Args()
    assert trainer.Args().model_lr == 2e-4  # the reference default
    warm = trainer.parse_args(["--init-from", "a.pth", "--reset-actor", "--imagine-starts", "400"])
    assert (warm.init_from, warm.reset_actor, warm.imagine_starts) == ("a.pth", True, 400)
    evaluated = trainer.parse_args(["--eval-interval-s", "5", "--eval-episodes", "3"])
    assert (evaluated.eval_interval_s, evaluated.eval_episodes) == (5.0, 3)
    flags = trainer.parse_args(["--no-progress", "--resume", "--eval-seed", "7"])
    assert (flags.progress, flags.resume, flags.eval_seed) == (False, True, 7)
    assert trainer.parse_args(["--no-reset-actor", "--pomdp"]).reset_actor is False
    with pytest.raises(SystemExit):
        trainer.parse_args(["--batch-size", "eight"])


def test_every_field_has_an_option_with_its_help_text(trainer: ModuleType) -> None:
    actions = {a.dest: a for a in trainer.argument_parser()._actions if a.dest != "help"}
    fields = {field.name: field for field in dataclasses.fields(trainer.Args)}
    assert set(actions) == set(fields)
    for name, field in fields.items():
        assert actions[name].option_strings[0] == "--" + name.replace("_", "-")
        assert actions[name].help == f"{field.metadata['help']} (default: {field.default})"
        assert len(field.metadata["help"]) > 10, name
    assert actions["pomdp"].option_strings == ["--pomdp", "--no-pomdp"]
    assert actions["batch_size"].type is int
    assert actions["model_lr"].type is float


def test_act_takes_the_latent_state_in_and_returns_it(trainer: ModuleType, tmp_path: Path) -> None:
    args = tiny_args(trainer, tmp_path)
    agent = trainer.build_agent(args.model_sizes(), seed=0)
    envs = trainer.Envs(args, np.random.default_rng(0))
    rows = envs.rows  # every env starts an episode: the state passed in is reset
    with torch.inference_mode():
        initial = agent.initial_state(args.num_envs)
    stale = trainer.LatentState(*(torch.randn_like(part) for part in initial))
    outputs = []
    for state_in in (initial, stale):
        torch.manual_seed(5)
        outputs.append(trainer.act(agent, state_in, rows, 0.0, np.random.default_rng(1)))
    (fresh_state, fresh_actions), (stale_state, stale_actions) = outputs
    assert np.array_equal(fresh_actions, stale_actions)
    assert all(torch.equal(a, b) for a, b in zip(fresh_state, stale_state, strict=True))
    assert fresh_state.deter.shape == (args.num_envs, args.deter)
    assert not torch.equal(fresh_state.deter, initial.deter)  # a new state, the input untouched
    assert torch.count_nonzero(initial.deter).item() == 0

    # Mid-episode the state carries over: the same rows from another state act on it.
    later = trainer.Rows(rows.obs, rows.action, rows.reward, rows.terminal, ~rows.first)
    torch.manual_seed(5)
    carried, _ = trainer.act(agent, fresh_state, later, 0.0, np.random.default_rng(1))
    torch.manual_seed(5)
    restarted, _ = trainer.act(agent, initial, later, 0.0, np.random.default_rng(1))
    assert not torch.equal(carried.deter, restarted.deter)

    # epsilon = 1: every action is the generator's uniform draw, after its explore draw.
    _, explored = trainer.act(agent, fresh_state, later, 1.0, np.random.default_rng(2))
    expected = np.random.default_rng(2)
    expected.random(args.num_envs)
    assert np.array_equal(explored, expected.integers(0, 3, size=args.num_envs))


def test_train_saves_a_loadable_checkpoint_and_resumes(trainer: ModuleType, tmp_path: Path) -> None:
    args = tiny_args(trainer, tmp_path)
    lines: list[str] = []
    first = trainer.train(args, log=lines.append)
    assert first.gradient_steps > 0
    assert any("wm_loss=" in line and "ms_per_grad=" in line for line in lines), lines

    agent = load_checkpoint(args.checkpoint)
    assert agent.sizes == args.model_sizes()
    assert agent.sizes.channels == 2
    assert agent.sizes.actions == 3
    assert (agent.metadata.game, agent.metadata.pomdp) == ("freeway", True)
    training = agent.metadata.training
    assert training["env_steps"] == first.counters.env_steps >= args.total_env_steps
    assert training["gradient_steps"] == first.gradient_steps
    assert training["args"]["batch_size"] == args.batch_size
    state = torch.load(args.resume_path, weights_only=True)
    assert state["replay"] is not None

    more = dataclasses.replace(args, total_env_steps=1_400, resume=True)
    second = trainer.train(more, log=lines.append)
    assert any(line.startswith(f"resumed at env step {first.counters.env_steps}") for line in lines)
    assert second.counters.env_steps >= 1_400
    assert second.gradient_steps > first.gradient_steps
    assert (
        load_checkpoint(args.checkpoint).metadata.training["env_steps"] == second.counters.env_steps
    )
