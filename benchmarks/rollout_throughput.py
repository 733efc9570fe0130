"""Rollout throughput: batched lock-step rollouts vs one episode at a time vs the games alone.

Run: ``python benchmarks/rollout_throughput.py [--checkpoint PATH] [--device cpu|cuda]``.
Every figure of one run comes from the same process on the same machine, so ratios compare
like with like. Results go to ``benchmarks/results/rollouts-<machine>.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pytest_dreamer_audit.model.agent import AgentMetadata, DreamerAgent, build_agent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.model.devices import resolve_device
from pytest_dreamer_audit.model.networks import ModelSizes
from pytest_dreamer_audit.rollout.envs import GameBatch
from pytest_dreamer_audit.rollout.rollouts import run_rollouts


def best_of(repeats: int, work: Callable[[], object], sync: Callable[[], None]) -> float:
    """Minimum wall time of ``repeats`` runs after one warm-up run."""
    work()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def games_only(episodes: int, steps: int) -> None:
    """The floor: stepping the games with random actions, no network."""
    batch = GameBatch("freeway", pomdp=True, episodes=episodes)
    batch.reset(list(range(episodes)))
    rng = np.random.default_rng(0)
    active = np.ones(episodes, dtype=bool)
    for _ in range(steps):
        batch.step(rng.integers(0, 3, episodes), active)


def one_at_a_time(agent: DreamerAgent, episodes: int, steps: int) -> None:
    """The notebook's way: each episode on its own, one observation per forward pass."""
    for b in range(episodes):
        run_rollouts(agent, "freeway", pomdp=True, episodes=1, steps=steps, seed=b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--sequential-max", type=int, default=64, help="largest B run one by one")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.checkpoint is not None:
        agent = load_checkpoint(args.checkpoint, device=device)
    else:
        sizes = ModelSizes(channels=2, actions=3)  # reference sizes, random weights
        agent = build_agent(sizes, seed=0, metadata=AgentMetadata("freeway", True)).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    machine = f"{platform.node()}-{device.type}"
    if device.type == "cuda":
        machine = f"{torch.cuda.get_device_name(device)}".replace(" ", "_")
    cpu_name = platform.processor() or platform.machine()
    rows = []
    steps = args.steps
    for episodes in args.batches:
        floor = best_of(args.repeats, lambda e=episodes: games_only(e, steps), lambda: None)
        batched = best_of(
            args.repeats,
            lambda e=episodes: run_rollouts(agent, "freeway", pomdp=True, episodes=e, steps=steps),
            sync,
        )
        sequential = None
        if episodes <= args.sequential_max:
            sequential = best_of(1, lambda e=episodes: one_at_a_time(agent, e, steps), sync)
        rows.append(
            {
                "episodes": episodes,
                "steps": steps,
                "games_only_s": floor,
                "batched_s": batched,
                "one_at_a_time_s": sequential,
                "batched_steps_per_s": episodes * steps / batched,
                "speedup_vs_one_at_a_time": None if sequential is None else sequential / batched,
                "batched_over_games_floor": batched / floor,
            }
        )
        print(json.dumps(rows[-1]))
    result = {
        "machine": machine,
        "cpu": cpu_name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "agent": "checkpoint" if args.checkpoint else "reference sizes, random weights",
        "rows": rows,
    }
    out = Path(__file__).parent / "results" / f"rollouts-{machine}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nmachine: {machine} ({cpu_name}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device})"
    )
    print(
        "| B x L | games only (s) | batched (s) | one at a time (s) | batched steps/s | speed-up |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        seq = "-" if r["one_at_a_time_s"] is None else f"{r['one_at_a_time_s']:.3f}"
        up = (
            "-"
            if r["speedup_vs_one_at_a_time"] is None
            else f"{r['speedup_vs_one_at_a_time']:.1f}x"
        )
        print(
            f"| {r['episodes']} x {r['steps']} | {r['games_only_s']:.3f} | {r['batched_s']:.3f} "
            f"| {seq} | {r['batched_steps_per_s']:.0f} | {up} |"
        )
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
