"""Play seeded full episodes with a checkpoint and two baselines; print a markdown table.

    python examples/evaluate_agent.py examples/checkpoints/freeway_pomdp.pth --json results.json

Every policy plays the same episode seeds (``seed .. seed + episodes - 1``) in one ``GameBatch``
stepped in lockstep, so the rows of the table are comparable. The agent is run batched, with its
samples drawn from the package's counter-based noise (reproducible per episode, whatever the
batch); it is reported both sampled (as it was trained) and greedy (argmax of the policy). The
baselines are uniform random over the minimal action set and, for games with an UP action,
always-UP. Runs on CPU in well under a minute for 20 Freeway episodes (2500 steps each).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.games import game_spec
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.model.sampling import NoiseKeys
from pytest_dreamer_audit.rollout.envs import GameBatch

Policy = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(obs [B, C, 10, 10] bool, first [B] bool, prev_action [B]) -> actions [B]``."""


@dataclass(frozen=True)
class PolicyResult:
    """Returns of one policy over the seeded episodes."""

    policy: str
    returns: list[float]
    seconds: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def play(batch: GameBatch, seeds: list[int], policy: Policy) -> list[float]:
    """Play one full episode per seed in lockstep; the return of each."""
    obs, _ = batch.reset(seeds)
    active = np.ones(batch.episodes, dtype=bool)
    first = np.ones(batch.episodes, dtype=bool)
    prev_action = np.zeros(batch.episodes, dtype=np.int64)
    returns = np.zeros(batch.episodes)
    while active.any():
        actions = policy(obs, first, prev_action)
        result = batch.step(actions, active)
        returns += result.reward * active
        active &= ~result.terminal
        obs, prev_action, first = result.obs, actions, np.zeros_like(first)
    return returns.tolist()


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


def evaluate(
    checkpoint: str | Path,
    *,
    episodes: int = 20,
    seed: int = 0,
    game: str | None = None,
    pomdp: bool | None = None,
    device: str = "cpu",
) -> list[PolicyResult]:
    """Returns of the agent (sampled, greedy) and the baselines on the same episode seeds."""
    agent = load_checkpoint(checkpoint, device=device)
    game = game or agent.metadata.game
    pomdp = pomdp if pomdp is not None else agent.metadata.pomdp
    if game is None or pomdp is None:
        raise ConfigError(
            f"{checkpoint} does not record its game and POMDP flag (a reference-format file); "
            "pass --game and --pomdp/--no-pomdp"
        )
    spec = game_spec(game)
    batch = GameBatch(game, pomdp=pomdp, episodes=episodes)
    if len(batch.channels) != agent.sizes.channels or spec.actions != agent.sizes.actions:
        raise ConfigError(
            f"{checkpoint} takes {agent.sizes.channels} channels and {agent.sizes.actions} "
            f"actions; {game} (pomdp={pomdp}) has {len(batch.channels)} and {spec.actions}"
        )
    seeds = list(range(seed, seed + episodes))
    policies: dict[str, Callable[[], Policy]] = {
        "agent (sampled)": lambda: agent_policy(agent, seeds, greedy=False),
        "agent (greedy)": lambda: agent_policy(agent, seeds, greedy=True),
        "uniform random": lambda: uniform_policy(spec.actions, seed),
    }
    if "up" in spec.action_names:
        up = spec.action_names.index("up")
        policies[f"always UP (action {up})"] = lambda: constant_policy(up)
    results = []
    for name, make in policies.items():
        start = time.perf_counter()
        returns = play(batch, seeds, make())
        results.append(PolicyResult(name, returns, time.perf_counter() - start))
    return results


def markdown_table(results: list[PolicyResult]) -> str:
    lines = [
        "| policy | mean return | std | min | max | episodes | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.policy} | {r.mean:.2f} | {r.std:.2f} | {min(r.returns):.0f} | "
            f"{max(r.returns):.0f} | {len(r.returns)} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


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
    results = evaluate(
        args.checkpoint,
        episodes=args.episodes,
        seed=args.seed,
        game=args.game,
        pomdp=args.pomdp,
        device=args.device,
    )
    print(markdown_table(results))
    if args.json:
        payload = {
            "checkpoint": str(args.checkpoint),
            "episodes": args.episodes,
            "seeds": [args.seed, args.seed + args.episodes - 1],
            "results": [asdict(r) | {"mean": r.mean, "std": r.std} for r in results],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
