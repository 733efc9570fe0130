"""Play seeded full episodes with a checkpoint and blind baselines; print markdown tables.

    python research/evaluate_agent.py examples/checkpoints/freeway_pomdp.pth --json results.json

Every policy plays the same episode seeds (``seed .. seed + episodes - 1``) in one ``GameBatch``
stepped in lockstep, so the rows of the tables are comparable. The agent is run batched, with its
samples drawn from the package's counter-based noise (reproducible per episode, whatever the
batch); it is reported both sampled (as it was trained) and greedy (argmax of the policy). The
baselines never look at the screen: uniform random over the minimal action set and, for games
with an UP action, always-UP and "UP with probability p, else noop" for each p in
:data:`UP_PROBABILITIES` (seeded per episode).

Three tables:

* returns of every policy;
* paired differences: for the agent (sampled, greedy) and each baseline, the agent's return minus
  the baseline's on the same seed, their mean and standard error (``std(ddof=1) / sqrt(n)``);
* danger reaction (Freeway): how often a policy chose noop or down (did not press UP), counted at
  the frames where the move timer allows a move (``move_ready``), split by ``up_hits`` (pressing
  UP in that frame would get the chicken hit; see ``pytest_dreamer_audit.rollout.envs``). A
  policy that reacts to danger holds back far more often when ``up_hits`` is 1; a blind policy
  holds back equally often in both.

Runs on CPU in about a minute for 20 Freeway episodes (2501 steps each).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.games import GameSpec, game_spec
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.model.sampling import NoiseKeys
from pytest_dreamer_audit.rollout.envs import GameBatch

Policy = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(obs [B, C, 10, 10] bool, first [B] bool, prev_action [B]) -> actions [B]``."""

UP_PROBABILITIES = (0.8, 0.9, 0.95)
"""The "UP with probability p, else noop" baselines."""


# ------------------------------------------------------------------------------------------------
# Playing: full episodes in lockstep, returns and the danger reaction
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reaction:
    """How often a policy did not press UP (chose noop or down) at the frames where it could
    move (``move_ready`` = 1), split by the frame's ``up_hits``; counted over every episode.

    The chosen action counts, not the one that ran (a sticky action may have repeated the last).
    """

    danger_steps: int
    """Move-ready frames with ``up_hits`` = 1."""
    danger_not_up: int
    """Of those, the frames where the policy chose noop or down."""
    safe_steps: int
    """Move-ready frames with ``up_hits`` = 0."""
    safe_not_up: int
    """Of those, the frames where the policy chose noop or down."""

    @property
    def rate_in_danger(self) -> float:
        """P(noop or down | up_hits = 1, move_ready = 1); NaN without such frames."""
        return self.danger_not_up / self.danger_steps if self.danger_steps else math.nan

    @property
    def rate_when_safe(self) -> float:
        """P(noop or down | up_hits = 0, move_ready = 1); NaN without such frames."""
        return self.safe_not_up / self.safe_steps if self.safe_steps else math.nan


@dataclass(frozen=True)
class Played:
    """What :func:`play` measured: the return of each episode, the reaction (None for games
    without the ``up_hits`` fact)."""

    returns: tuple[float, ...]
    reaction: Reaction | None


def play(batch: GameBatch, seeds: list[int], policy: Policy) -> Played:
    """Play one full episode per seed in lockstep; the return of each and the danger reaction."""
    obs, facts = batch.reset(seeds)
    names, spec = batch.fact_names, batch.spec
    reacts = "up_hits" in names and "up" in spec.action_names
    up = spec.action_names.index("up") if reacts else -1
    active = np.ones(batch.episodes, dtype=bool)
    first = np.ones(batch.episodes, dtype=bool)
    prev_action = np.zeros(batch.episodes, dtype=np.int64)
    returns = np.zeros(batch.episodes)
    counts = np.zeros((2, 2), dtype=np.int64)  # [up_hits, chose noop or down]
    while active.any():
        actions = policy(obs, first, prev_action)
        if reacts:  # observation facts come first, in fact_names order
            ready = active & (facts[:, names.index("move_ready")] == 1)
            hits = facts[ready, names.index("up_hits")]
            np.add.at(counts, (hits, (actions[ready] != up).astype(np.int64)), 1)
        result = batch.step(actions, active)
        returns += result.reward * active
        active &= ~result.terminal
        obs, prev_action, first = result.obs, actions, np.zeros_like(first)
        facts = result.observation_facts
    reaction = None
    if reacts:
        (safe_up, safe_not_up), (danger_up, danger_not_up) = counts.tolist()
        reaction = Reaction(
            danger_steps=danger_up + danger_not_up,
            danger_not_up=danger_not_up,
            safe_steps=safe_up + safe_not_up,
            safe_not_up=safe_not_up,
        )
    return Played(tuple(returns.tolist()), reaction)


# ------------------------------------------------------------------------------------------------
# Policies
# ------------------------------------------------------------------------------------------------
def agent_policy(agent: DreamerAgent, seeds: list[int], *, greedy: bool) -> Policy:
    """The agent filtering its observations and acting on the posterior, batched."""
    noise = NoiseKeys.from_seeds(seeds, device=agent.device)
    state = agent.initial_state(len(seeds))

    @torch.inference_mode()
    def act(obs: np.ndarray, first: np.ndarray, prev_action: np.ndarray) -> np.ndarray:
        nonlocal noise, state
        device = agent.device
        nonterminal = torch.from_numpy(~first).to(device, torch.float32)
        prev = agent.one_hot_actions(torch.from_numpy(prev_action).to(device))
        prev = prev * nonterminal[:, None]
        obs_t = torch.from_numpy(obs).to(device, torch.float32)
        _, state = agent.observe(state, obs_t, prev, nonterminal, noise=noise)
        actions = agent.act(state, greedy=greedy, noise=noise)
        noise = noise.advance()
        return actions.cpu().numpy()

    return act


def uniform_policy(actions: int, seed: int) -> Policy:
    rng = np.random.default_rng(seed)
    return lambda obs, first, prev: rng.integers(0, actions, size=len(obs))


def constant_policy(action: int) -> Policy:
    return lambda obs, first, prev: np.full(len(obs), action, dtype=np.int64)


def up_or_noop_policy(up: int, noop: int, probability: float, seeds: list[int]) -> Policy:
    """UP with ``probability``, else noop, never looking at the screen.

    One generator per episode, seeded by the episode's seed and the probability, so an episode
    draws the same actions whatever else is in the batch.
    """
    stream = round(probability * 1_000_000)
    rngs = [np.random.default_rng([seed, stream]) for seed in seeds]

    def act(obs: np.ndarray, first: np.ndarray, prev_action: np.ndarray) -> np.ndarray:
        draws = np.array([rng.random() for rng in rngs])
        return np.where(draws < probability, up, noop).astype(np.int64)

    return act


def baseline_policies(spec: GameSpec, seeds: list[int], seed: int) -> dict[str, Policy]:
    """The blind baselines of ``spec``'s game, by name."""
    policies = {"uniform random": uniform_policy(spec.actions, seed)}
    if "up" in spec.action_names:
        up, noop = spec.action_names.index("up"), spec.action_names.index("noop")
        policies[f"always UP (action {up})"] = constant_policy(up)
        for p in UP_PROBABILITIES:
            policies[f"UP with p={p:g}, else noop"] = up_or_noop_policy(up, noop, p, seeds)
    return policies


# ------------------------------------------------------------------------------------------------
# Results: per policy, paired against the baselines
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyResult:
    """Returns of one policy over the seeded episodes (``returns[i]`` on ``seeds[i]``)."""

    policy: str
    seeds: tuple[int, ...]
    returns: tuple[float, ...]
    seconds: float
    reaction: Reaction | None = None

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


@dataclass(frozen=True)
class PairedDifference:
    """``policy``'s return minus ``baseline``'s, seed by seed."""

    policy: str
    baseline: str
    differences: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences))

    @property
    def standard_error(self) -> float:
        """``std(ddof=1) / sqrt(n)`` of the differences; NaN for a single episode."""
        n = len(self.differences)
        if n < 2:
            return math.nan
        return float(np.std(self.differences, ddof=1) / math.sqrt(n))


def paired_difference(policy: PolicyResult, baseline: PolicyResult) -> PairedDifference:
    """The per-seed differences of two results played on the same seeds."""
    if policy.seeds != baseline.seeds:
        raise ConfigError(
            f"{policy.policy!r} and {baseline.policy!r} were played on different seeds "
            f"({list(policy.seeds)} vs {list(baseline.seeds)}); pair results of one evaluation"
        )
    differences = tuple(a - b for a, b in zip(policy.returns, baseline.returns, strict=True))
    return PairedDifference(policy.policy, baseline.policy, differences)


@dataclass(frozen=True)
class Evaluation:
    """The agent's results and the baselines', all on the same seeds."""

    agents: tuple[PolicyResult, ...]
    baselines: tuple[PolicyResult, ...]

    @property
    def results(self) -> tuple[PolicyResult, ...]:
        return self.agents + self.baselines

    @property
    def differences(self) -> tuple[PairedDifference, ...]:
        """Each agent result against each baseline."""
        return tuple(paired_difference(a, b) for a in self.agents for b in self.baselines)


def play_timed(name: str, batch: GameBatch, seeds: list[int], policy: Policy) -> PolicyResult:
    """:func:`play` one policy on the seeds, timed, as a named :class:`PolicyResult`."""
    start = time.perf_counter()
    played = play(batch, seeds, policy)
    seconds = time.perf_counter() - start
    return PolicyResult(name, tuple(seeds), played.returns, seconds, played.reaction)


def evaluate_agent(
    agent: DreamerAgent, *, game: str, pomdp: bool, episodes: int = 20, seed: int = 0
) -> Evaluation:
    """The agent (sampled, greedy) and the baselines on seeds ``seed .. seed + episodes - 1``."""
    spec = game_spec(game)
    batch = GameBatch(game, pomdp=pomdp, episodes=episodes)
    if len(batch.channels) != agent.sizes.channels or spec.actions != agent.sizes.actions:
        raise ConfigError(
            f"the agent takes {agent.sizes.channels} channels and {agent.sizes.actions} "
            f"actions; {game} (pomdp={pomdp}) has {len(batch.channels)} and {spec.actions}"
        )
    seeds = list(range(seed, seed + episodes))
    agents = tuple(
        play_timed(name, batch, seeds, agent_policy(agent, seeds, greedy=greedy))
        for name, greedy in (("agent (sampled)", False), ("agent (greedy)", True))
    )
    baselines = tuple(
        play_timed(name, batch, seeds, policy)
        for name, policy in baseline_policies(spec, seeds, seed).items()
    )
    return Evaluation(agents, baselines)


def evaluate(
    checkpoint: str | Path,
    *,
    episodes: int = 20,
    seed: int = 0,
    game: str | None = None,
    pomdp: bool | None = None,
    device: str = "cpu",
) -> Evaluation:
    """:func:`evaluate_agent` on a checkpoint, on the game and POMDP flag it records."""
    agent = load_checkpoint(checkpoint, device=device)
    game = game or agent.metadata.game
    pomdp = pomdp if pomdp is not None else agent.metadata.pomdp
    if game is None or pomdp is None:
        raise ConfigError(
            f"{checkpoint} does not record its game and POMDP flag (a reference-format file); "
            "pass --game and --pomdp/--no-pomdp"
        )
    return evaluate_agent(agent, game=game, pomdp=pomdp, episodes=episodes, seed=seed)


# ------------------------------------------------------------------------------------------------
# Output: markdown tables and JSON
# ------------------------------------------------------------------------------------------------
def _number(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _markdown(header: Sequence[str], align: str, rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; ``align`` has one letter per column (``l`` left, ``r`` right)."""
    rule = "|".join("---" if a == "l" else "---:" for a in align)
    lines = ["| " + " | ".join(header) + " |", f"|{rule}|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(results: Sequence[PolicyResult]) -> str:
    return _markdown(
        ("policy", "mean return", "std", "min", "max", "episodes", "seconds"),
        "lrrrrrr",
        [
            (r.policy, f"{r.mean:.2f}", f"{r.std:.2f}", f"{min(r.returns):.0f}",
             f"{max(r.returns):.0f}", len(r.returns), f"{r.seconds:.1f}")
            for r in results
        ],
    )  # fmt: skip


def differences_table(differences: Sequence[PairedDifference]) -> str:
    return _markdown(
        ("policy", "minus baseline", "mean difference", "SE", "episodes"),
        "llrrr",
        [
            (d.policy, d.baseline, f"{d.mean:+.2f}", _number(d.standard_error),
             len(d.differences))
            for d in differences
        ],
    )  # fmt: skip


def reaction_table(results: Sequence[PolicyResult]) -> str:
    """Rows for the results with a reaction (none for games without ``up_hits``)."""
    return _markdown(
        ("policy", "P(noop or down \\| up_hits = 1)", "frames",
         "P(noop or down \\| up_hits = 0)", "frames"),
        "lrrrr",
        [
            (r.policy, _number(r.reaction.rate_in_danger, 3), r.reaction.danger_steps,
             _number(r.reaction.rate_when_safe, 3), r.reaction.safe_steps)
            for r in results
            if r.reaction is not None
        ],
    )  # fmt: skip


def report(evaluation: Evaluation) -> str:
    """The three markdown tables (the reaction table only for games with ``up_hits``)."""
    parts = [
        "## Returns\n\n" + markdown_table(evaluation.results),
        "## Paired differences (agent minus baseline, same seeds)\n\n"
        + differences_table(evaluation.differences),
    ]
    if any(r.reaction is not None for r in evaluation.results):
        parts.append(
            "## Danger reaction (move-ready frames only)\n\n" + reaction_table(evaluation.results)
        )
    return "\n\n".join(parts)


def _finite(value: float) -> float | None:
    """JSON has no NaN."""
    return None if math.isnan(value) else value


def to_json(evaluation: Evaluation, *, checkpoint: str, episodes: int, seed: int) -> dict[str, Any]:
    return {
        "checkpoint": checkpoint,
        "episodes": episodes,
        "seeds": [seed, seed + episodes - 1],
        "results": [asdict(r) | {"mean": r.mean, "std": r.std} for r in evaluation.results],
        "paired_differences": [
            asdict(d) | {"mean": d.mean, "standard_error": _finite(d.standard_error)}
            for d in evaluation.differences
        ],
        "danger_reaction": [
            {"policy": r.policy}
            | asdict(r.reaction)
            | {
                "rate_in_danger": _finite(r.reaction.rate_in_danger),
                "rate_when_safe": _finite(r.reaction.rate_when_safe),
            }
            for r in evaluation.results
            if r.reaction is not None
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a reference or native DreamerV2 MinAtar .pth file")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per policy")
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--game", default=None, help="override the game in the metadata")
    parser.add_argument(
        "--pomdp", action=argparse.BooleanOptionalAction, default=None, help="override POMDP flag"
    )
    parser.add_argument("--device", default="cpu", help="torch device of the agent")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    evaluation = evaluate(
        args.checkpoint,
        episodes=args.episodes,
        seed=args.seed,
        game=args.game,
        pomdp=args.pomdp,
        device=args.device,
    )
    print(report(evaluation))
    if args.json:
        payload = to_json(
            evaluation, checkpoint=str(args.checkpoint), episodes=args.episodes, seed=args.seed
        )
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
