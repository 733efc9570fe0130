"""Suite 1, rollouts: the notebook's loop vs batched ``run_rollouts`` vs the games alone.

Same agent, same seeds (episode b seeded with b in both loops), B episodes x 50 steps; and the
top-level torch operators one batched step dispatches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity

from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.rollout.envs import GameBatch

from .agent import GAME, STEPS, rollout
from .timing import Clock, Timing


@dataclass(frozen=True)
class RolloutRow:
    """One batch size B: the three ways of producing B x ``STEPS`` steps."""

    episodes: int
    steps: int
    games_only: Timing
    batched: Timing
    notebook_loop: Timing
    speedup: float
    """Notebook loop over batched (best times)."""
    batched_over_games_only: float
    batched_steps_per_s: float
    notebook_steps_per_s: float
    batched_torch_ops_per_step: float | None = None
    """None in files written before it was counted."""


@dataclass(frozen=True)
class RolloutSuite:
    rows: tuple[RolloutRow, ...]
    same_actions_fraction: float
    """Steps on which the batched rollout chose the notebook loop's action."""
    checked_episodes: int


def games_only(episodes: int) -> None:
    """The floor: stepping the games with random actions (facts included), no network."""
    batch = GameBatch(GAME, pomdp=True, episodes=episodes)
    batch.reset(list(range(episodes)))
    rng = np.random.default_rng(0)
    active = np.ones(episodes, dtype=bool)
    for _ in range(STEPS):
        batch.step(rng.integers(0, 3, episodes), active)


def one_at_a_time(agent: DreamerAgent, episodes: int) -> None:
    """The notebook's way: each episode on its own, one observation per forward pass."""
    for b in range(episodes):
        rollout(agent, 1, seed=b)


def torch_ops_per_step(work: Callable[[], Any], steps: int) -> float:
    """Top-level torch operators that ``work`` dispatches per step (profiler count).

    On a GPU each is at least one kernel launch, and at a few microseconds per launch the count
    is what a small-batch rollout step costs there; it does not depend on the machine.
    """
    with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
        work()
    top_level = [
        event
        for event in prof.events()
        if event.name.startswith("aten::")
        and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
    ]
    return len(top_level) / steps


def bench_rollouts(
    agent: DreamerAgent, clock: Clock, batches: list[int], repeats: int, sequential_repeats: int
) -> RolloutSuite:
    rows = []
    for episodes in batches:
        batch = partial(rollout, agent, episodes)
        floor, _ = clock.best_of(repeats, partial(games_only, episodes))
        batched, _ = clock.best_of(repeats, batch)
        notebook, _ = clock.best_of(sequential_repeats, partial(one_at_a_time, agent, episodes))
        rows.append(
            RolloutRow(
                episodes=episodes,
                steps=STEPS,
                games_only=floor,
                batched=batched,
                notebook_loop=notebook,
                speedup=notebook.best_s / batched.best_s,
                batched_over_games_only=batched.best_s / floor.best_s,
                batched_steps_per_s=episodes * STEPS / batched.best_s,
                notebook_steps_per_s=episodes * STEPS / notebook.best_s,
                batched_torch_ops_per_step=torch_ops_per_step(batch, STEPS),
            )
        )
        print(
            f"  rollouts {episodes} x {STEPS}: batched {batched.best_s:.3f} s, notebook loop "
            f"{notebook.best_s:.3f} s, games only {floor.best_s:.3f} s",
            flush=True,
        )
    # Same agent, same seeds: episode b of the batch is the notebook's episode b.
    check = min(16, min(batches))
    together = rollout(agent, check)
    alone = [rollout(agent, 1, seed=b) for b in range(check)]
    one_by_one = torch.cat([t.actions for t in alone], dim=1)
    same = float((one_by_one == together.actions).float().mean())
    return RolloutSuite(tuple(rows), same, check)
