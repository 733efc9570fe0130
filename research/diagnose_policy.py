"""Does the world model foresee the cars and the hits, and does the actor act on what it foresees?

    python research/diagnose_policy.py examples/checkpoints/freeway_pomdp.pth --seed 6000

Two measurements on the agent's own rollouts (``episodes`` x ``steps``, sampled, seeds
``seed .. seed + episodes - 1``), each printed next to its nulls. Freeway only.

**Open-loop prediction.** From the posterior at step ``t`` the prior alone imagines steps
``t+1 .. t+K`` (fed the actions the agent really took, each step's most likely class per
categorical), and the decoder draws them. Counted per frame: the pixels of the car channel (and of
the chicken channel) where the drawing (thresholded at 0.5) differs from the real observation
``o_{t+k}``. Nulls on the same frames: ``copy`` (``o_t`` drawn again: the cars did not move) and
the posterior's own reconstruction of ``o_{t+k}`` (what the decoder can draw at best). A world
model that knows how the cars move beats ``copy``; one that does not falls to or above it.
Collisions: among the transitions ``t -> t+1`` where the chicken was hit (the ``collision``
fact), the share whose one-step imagination puts the chicken back on row 9 (recall), and the same
share among the other transitions where it was not already there (false alarms).

**One-step lookahead.** At every frame where the chicken can move (``move_ready``) the prior
imagines the next state after each action (``samples`` draws), and the critic scores it:
``Q(a) = r(s') + discount * P(continue | s') * V(s')``, averaged over the draws. Split by the game's
``up_hits`` fact (pressing UP now gets the chicken hit): how often ``Q(up) < Q(noop)`` (the
agent's own model and critic would hold back) against the actor's mean ``P(noop or down)`` in the
same states. A model and critic that see the danger prefer noop far more often when ``up_hits`` is
1; random weights prefer it equally often in both. An actor that lags what its own model and
critic know reacts less than the lookahead does.

**Acting on the lookahead** (``--play N``): N full episodes where the agent's own filter picks,
at every frame, the action of highest ``Q(a)`` above (``samples`` prior draws per action and
frame, seeded: with one draw the values are too noisy to act on), against the actor sampled and
greedy on the same seeds, with the paired differences and the danger reaction of
``research/evaluate_agent.py``. What one step of policy improvement on the agent's own model and
critic would score: how much an actor trained to do what they say could gain.

The rollouts' samples come from the package's per-episode noise and the lookahead's prior draws
from torch's generator seeded with ``seed``, so a rerun prints the same figures.

``--random-weights`` runs the same measurements with an agent of the checkpoint's sizes and
seeded random weights: the null of both.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sibling import sibling
from torch import Tensor

from pytest_dreamer_audit.analysis.trust import mode_one_hot
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import DreamerAgent, LatentState, build_agent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.model.sampling import NoiseKeys
from pytest_dreamer_audit.rollout.envs import GameBatch
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts

CHICKEN, CAR = 0, 1
"""Channels of Freeway's POMDP observation."""
START_ROW = 9
"""The row a hit (or a score) puts the chicken back on; the chicken is always in column 4."""
CHICKEN_COLUMN = 4
ACTIONS = {"noop": 0, "up": 1, "down": 2}
"""Freeway's minimal action set, by name."""


# ------------------------------------------------------------------------------------------------
# Open-loop prediction
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AheadErrors:
    """Mean wrong pixels per frame ``k`` steps ahead, over the frames of every start."""

    k: int
    car_model: float
    car_copy: float
    car_posterior: float
    chicken_model: float
    chicken_copy: float
    frames: int


@dataclass(frozen=True)
class OpenLoop:
    ahead: tuple[AheadErrors, ...]
    collisions: int
    """Transitions ``t -> t+1`` (at the starts) where the chicken was hit."""
    transitions: int
    """Transitions at the starts (every episode still running ``K`` steps later)."""
    collision_recall: float
    """Share of the hits whose one-step imagination puts the chicken on row 9."""
    false_alarm: float
    """The same share among the transitions without a hit, from frames off row 9."""


def _drawn(agent: DreamerAgent, stoch: Tensor, deter: Tensor) -> Tensor:
    """``[N, C, K]`` one-hot and ``[N, D]`` -> ``[N, channels, 10, 10]`` bool (mean > 0.5)."""
    assert agent.obs_decoder is not None
    state = LatentState(stoch, stoch, deter).model_state
    return agent.obs_decoder(state) > 0.5


def _wrong(drawn: Tensor, truth: Tensor, channel: int) -> Tensor:
    """Pixels of ``channel`` that differ, per frame: ``[N, channels, 10, 10]`` x2 -> ``[N]``."""
    return (drawn[:, channel] != truth[:, channel]).flatten(1).sum(1).float()


def open_loop(agent: DreamerAgent, trajectory: Trajectory, horizon: int, stride: int) -> OpenLoop:
    """The open-loop errors ``1 .. horizon`` steps ahead from starts ``horizon, horizon + stride,
    ...`` (each start uses the episodes still running ``horizon`` steps later).

    Shape (of the trajectory): observations ``[L, B, 2, 10, 10]``; every other field time-major.
    """
    if agent.obs_decoder is None:
        raise ConfigError("the open-loop prediction needs the checkpoint's ObsDecoder")
    obs = trajectory.observations.bool()
    collision = trajectory.fact("collision").bool()
    post_mode = mode_one_hot(trajectory.posterior_logits)
    sums = {name: np.zeros(horizon) for name in ("cm", "cc", "cp", "hm", "hc")}
    frames = np.zeros(horizon, dtype=np.int64)
    hits: list[Tensor] = []
    reset: list[Tensor] = []
    off_start: list[Tensor] = []
    steps = trajectory.steps
    with torch.inference_mode():
        for t in range(horizon, steps - horizon, stride):
            running = trajectory.valid[t : t + horizon + 1].bool().all(0).nonzero().squeeze(1)
            if len(running) == 0:
                continue
            state = LatentState(
                trajectory.posterior_logits[t, running], post_mode[t, running],
                trajectory.deter[t, running],
            )  # fmt: skip
            for k in range(1, horizon + 1):
                prior = agent.imagine(
                    state, agent.one_hot_actions(trajectory.actions[t + k - 1, running])
                )
                state = LatentState(prior.logits, mode_one_hot(prior.logits), prior.deter)
                drawn = _drawn(agent, state.stoch, state.deter)
                truth = obs[t + k, running]
                posterior = _drawn(
                    agent, post_mode[t + k, running], trajectory.deter[t + k, running]
                )
                copy = obs[t, running]
                i = k - 1
                sums["cm"][i] += _wrong(drawn, truth, CAR).sum().item()
                sums["cc"][i] += _wrong(copy, truth, CAR).sum().item()
                sums["cp"][i] += _wrong(posterior, truth, CAR).sum().item()
                sums["hm"][i] += _wrong(drawn, truth, CHICKEN).sum().item()
                sums["hc"][i] += _wrong(copy, truth, CHICKEN).sum().item()
                frames[i] += len(running)
                if k == 1:
                    hits.append(collision[t, running])
                    reset.append(drawn[:, CHICKEN, START_ROW, CHICKEN_COLUMN])
                    off_start.append(~obs[t, running, CHICKEN, START_ROW, CHICKEN_COLUMN])
    if frames[0] == 0:
        raise ConfigError(
            f"no episode runs {horizon} steps past a start; give more steps than 2 x {horizon}"
        )
    mean = {name: total / frames for name, total in sums.items()}
    ahead = tuple(
        AheadErrors(
            k=i + 1,
            car_model=float(mean["cm"][i]),
            car_copy=float(mean["cc"][i]),
            car_posterior=float(mean["cp"][i]),
            chicken_model=float(mean["hm"][i]),
            chicken_copy=float(mean["hc"][i]),
            frames=int(frames[i]),
        )
        for i in range(horizon)
    )
    hit, drew_reset, off = torch.cat(hits), torch.cat(reset), torch.cat(off_start)
    quiet = ~hit & off
    return OpenLoop(
        ahead,
        collisions=int(hit.sum()),
        transitions=len(hit),
        collision_recall=_share(drew_reset[hit]),
        false_alarm=_share(drew_reset[quiet]),
    )


def _share(flags: Tensor) -> float:
    return float(flags.float().mean()) if len(flags) else float("nan")


# ------------------------------------------------------------------------------------------------
# One-step lookahead
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lookahead:
    """The lookahead's and the actor's choices in one split of the ``move_ready`` frames."""

    split: str
    states: int
    prefers_noop: float
    """Share of the states where ``Q(up) < Q(noop)``."""
    q_gap: float
    """Mean ``Q(up) - Q(noop)``."""
    actor_holds_back: float
    """The actor's mean ``P(noop) + P(down)``."""


def action_values(agent: DreamerAgent, state: LatentState, samples: int, discount: float) -> Tensor:
    """``Q(a)`` of every action from ``state`` (module docstring): ``[N, actions]``."""
    n = state.deter.shape[0]
    values = []
    for action in range(agent.sizes.actions):
        one_hot = agent.one_hot_actions(torch.full((n,), action, dtype=torch.long))
        total = torch.zeros(n)
        for _ in range(samples):
            total += agent.arrival_value(agent.imagine(state, one_hot).model_state, discount)
        values.append(total / samples)
    return torch.stack(values, dim=-1)


def lookahead(
    agent: DreamerAgent, trajectory: Trajectory, samples: int, discount: float
) -> tuple[Lookahead, Lookahead]:
    """The ``up_hits`` and the ``safe`` split of the ``move_ready`` frames (module docstring)."""
    if agent.value_model is None or agent.reward_decoder is None or agent.discount_model is None:
        raise ConfigError(
            "the lookahead needs the checkpoint's critic, reward and discount heads; this "
            "checkpoint lacks at least one of them"
        )
    ready = trajectory.valid.bool() & (trajectory.fact("move_ready") == 1)
    danger = trajectory.fact("up_hits")[ready].bool()
    with torch.inference_mode():
        state = LatentState(
            trajectory.posterior_logits[ready], trajectory.stoch[ready], trajectory.deter[ready]
        )
        q = action_values(agent, state, samples, discount)
        policy = torch.softmax(agent.policy_logits(state), dim=-1)
    noop, up, down = ACTIONS["noop"], ACTIONS["up"], ACTIONS["down"]
    held_back = policy[:, noop] + policy[:, down]
    gap = q[:, up] - q[:, noop]

    def split(name: str, pick: Tensor) -> Lookahead:
        if not pick.any():
            return Lookahead(name, 0, float("nan"), float("nan"), float("nan"))
        return Lookahead(
            name,
            int(pick.sum()),
            _share(gap[pick] < 0),
            float(gap[pick].mean()),
            float(held_back[pick].mean()),
        )

    return split("up_hits", danger), split("safe", ~danger)


# ------------------------------------------------------------------------------------------------
# Acting on the lookahead: full episodes, next to the actor on the same seeds
# ------------------------------------------------------------------------------------------------
def lookahead_policy(agent: DreamerAgent, seeds: list[int], samples: int, discount: float) -> Any:
    """An ``evaluate_agent.Policy``: the agent's filter (as ``agent_policy`` runs it), then the
    action of highest :func:`action_values` instead of the actor's choice."""
    noise = NoiseKeys.from_seeds(seeds, device=agent.device)
    state = agent.initial_state(len(seeds))

    @torch.inference_mode()
    def act(obs: np.ndarray, first: np.ndarray, prev_action: np.ndarray) -> np.ndarray:
        nonlocal noise, state
        nonterminal = torch.from_numpy(~first).to(torch.float32)
        prev = agent.one_hot_actions(torch.from_numpy(prev_action)) * nonterminal[:, None]
        observed = torch.from_numpy(obs).to(torch.float32)
        _, state = agent.observe(state, observed, prev, nonterminal, noise=noise)
        noise = noise.advance()
        return action_values(agent, state, samples, discount).argmax(-1).numpy()

    return act


def play_lookahead(
    agent: DreamerAgent, *, episodes: int, seed: int, samples: int, discount: float
) -> tuple[Any, ...]:
    """``PolicyResult`` of the actor (sampled, greedy) and of the lookahead on seeds
    ``seed .. seed + episodes - 1``, full episodes in lockstep."""
    evaluate = sibling("evaluate_agent")
    batch = GameBatch("freeway", pomdp=True, episodes=episodes)
    seeds = list(range(seed, seed + episodes))
    policies = {
        "actor (sampled)": evaluate.agent_policy(agent, seeds, greedy=False),
        "actor (greedy)": evaluate.agent_policy(agent, seeds, greedy=True),
        "lookahead (argmax Q)": lookahead_policy(agent, seeds, samples, discount),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return tuple(evaluate.play_timed(name, batch, seeds, p) for name, p in policies.items())


def play_report(results: tuple[Any, ...]) -> str:
    evaluate = sibling("evaluate_agent")
    look = results[-1]
    differences = [evaluate.paired_difference(look, actor) for actor in results[:-1]]
    return "\n\n".join(
        (
            evaluate.markdown_table(results),
            evaluate.differences_table(differences),
            evaluate.reaction_table(results),
        )
    )


# ------------------------------------------------------------------------------------------------
# The whole diagnosis and its report
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Diagnosis:
    checkpoint: str
    random_weights: bool
    seeds: tuple[int, int]
    steps: int
    open_loop: OpenLoop
    lookahead: tuple[Lookahead, Lookahead]


def load_agent(checkpoint: str | Path, *, random_weights: bool) -> DreamerAgent:
    """The checkpoint's agent, or one of its sizes with seeded random weights (seed 0)."""
    agent = load_checkpoint(checkpoint)
    if agent.metadata.game not in (None, "freeway"):
        raise ConfigError(f"{checkpoint} plays {agent.metadata.game}; this diagnosis is Freeway's")
    if random_weights:
        agent = build_agent(agent.sizes, seed=0, metadata=agent.metadata)
    return agent.eval()


def diagnose(
    agent: DreamerAgent,
    *,
    checkpoint: str,
    random_weights: bool,
    episodes: int,
    steps: int,
    seed: int,
    horizon: int = 8,
    stride: int = 3,
    samples: int = 8,
    discount: float = 0.99,
) -> Diagnosis:
    trajectory = run_rollouts(
        agent,
        "freeway",
        pomdp=True,
        episodes=episodes,
        steps=steps,
        seeds=list(range(seed, seed + episodes)),
    )
    with torch.random.fork_rng(devices=[]):  # the lookahead's prior draws, reproducibly
        torch.manual_seed(seed)
        looked = lookahead(agent, trajectory, samples, discount)
    return Diagnosis(
        checkpoint,
        random_weights,
        (seed, seed + episodes - 1),
        steps,
        open_loop(agent, trajectory, horizon, stride),
        looked,
    )


def report(diagnosis: Diagnosis) -> str:
    d, o = diagnosis, diagnosis.open_loop
    weights = "seeded random weights of its sizes" if d.random_weights else "its weights"
    lines = [
        f"{d.checkpoint} ({weights}), seeds {d.seeds[0]}-{d.seeds[1]}, {d.steps} steps each",
        "",
        "| k | car: model | car: copy o_t | car: posterior | chicken: model | chicken: copy o_t "
        "| frames |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {a.k} | {a.car_model:.2f} | {a.car_copy:.2f} | {a.car_posterior:.2f} | "
        f"{a.chicken_model:.2f} | {a.chicken_copy:.2f} | {a.frames} |"
        for a in o.ahead
    ]
    lines += [
        "",
        f"hits: {o.collisions} of {o.transitions} transitions; one-step imagination puts the "
        f"chicken back on row 9 for {o.collision_recall:.3f} of them and for {o.false_alarm:.4f} "
        "of the others (false alarms)",
        "",
        "| move_ready frames | states | Q(up) < Q(noop) | mean Q(up) - Q(noop) | actor P(noop or "
        "down) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {x.split} | {x.states} | {x.prefers_noop:.3f} | {x.q_gap:+.4f} | "
        f"{x.actor_holds_back:.3f} |"
        for x in d.lookahead
    ]
    danger, safe = d.lookahead
    lines += [
        "",
        f"ratio up_hits / safe: lookahead {_ratio(danger.prefers_noop, safe.prefers_noop)}, actor "
        f"{_ratio(danger.actor_holds_back, safe.actor_holds_back)}",
    ]
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def to_json(diagnosis: Diagnosis) -> dict[str, Any]:
    return asdict(diagnosis)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a reference or native DreamerV2 Freeway .pth file")
    parser.add_argument("--episodes", type=int, default=16, help="episodes (B)")
    parser.add_argument("--steps", type=int, default=300, help="steps per episode (L)")
    parser.add_argument("--seed", type=int, default=6000, help="first episode seed")
    parser.add_argument("--horizon", type=int, default=8, help="open-loop steps ahead (K)")
    parser.add_argument("--stride", type=int, default=3, help="steps between open-loop starts")
    parser.add_argument("--samples", type=int, default=8, help="prior draws per lookahead")
    parser.add_argument(
        "--discount",
        type=float,
        default=None,
        help="the lookahead's discount (default: the trainer's, from the metadata, else 0.99)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="the null: an agent of the checkpoint's sizes with seeded random weights",
    )
    parser.add_argument(
        "--play",
        type=int,
        default=0,
        help="also play this many full episodes acting on the lookahead (seeds from --seed)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    for name in ("episodes", "steps", "horizon", "stride", "samples"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.play < 0:
        raise ConfigError(f"--play must be 0 (do not play) or more, got {args.play}")
    if args.discount is not None and not 0.0 <= args.discount <= 1.0:
        raise ConfigError(f"--discount must be in [0, 1], got {args.discount}")
    torch.set_num_threads(args.threads)
    agent = load_agent(args.checkpoint, random_weights=args.random_weights)
    trained = agent.metadata.training.get("args", {})
    discount = args.discount if args.discount is not None else float(trained.get("discount", 0.99))
    diagnosis = diagnose(
        agent,
        checkpoint=str(args.checkpoint),
        random_weights=args.random_weights,
        episodes=args.episodes,
        steps=args.steps,
        seed=args.seed,
        horizon=args.horizon,
        stride=args.stride,
        samples=args.samples,
        discount=discount,
    )
    print(report(diagnosis))
    payload = to_json(diagnosis)
    if args.play:
        played = play_lookahead(
            agent, episodes=args.play, seed=args.seed, samples=args.samples, discount=discount
        )
        print("\n" + play_report(played))
        payload["played"] = [
            {"policy": r.policy, "seeds": list(r.seeds), "returns": list(r.returns)} for r in played
        ]
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
