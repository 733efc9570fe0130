"""What each optional trust check costs: ``explain`` with the defaults and with each option on,
measured side by side in one run on the bundled checkpoint (one torch thread).

    python benchmarks/options.py [--episodes 16] [--repeats 3] [--out FILE]

Each configuration is timed ``--repeats`` times in an interleaved order (every round times every
configuration once), so a machine that slows down hurts all of them alike; the table gives the
best time and its ratio to the defaults'.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench.machine import describe_here, publish

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.results.config import ExplainConfig
from pytest_dreamer_audit.rollout.rollouts import run_rollouts

CHECKPOINT = Path(__file__).resolve().parents[1] / "examples" / "checkpoints" / "freeway_pomdp.pth"
OPTIONS: dict[str, ExplainConfig] = {
    "defaults": ExplainConfig(),
    "--dreamer-randomization cascade": ExplainConfig(randomization="cascade"),
    "--dreamer-probes true": ExplainConfig(probes=True),
    "--dreamer-curves true": ExplainConfig(curves=True),
    "--dreamer-decoded true": ExplainConfig(decoded=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = load_checkpoint(CHECKPOINT, device="cpu")
    trajectory = run_rollouts(agent, episodes=args.episodes, steps=args.steps, seed=0)
    explain(trajectory, ExplainConfig(), agent=agent)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in OPTIONS}
    for _ in range(args.repeats):
        for name, config in OPTIONS.items():
            start = time.perf_counter()
            explain(trajectory, config, agent=agent)
            times[name].append(time.perf_counter() - start)
    base = min(times["defaults"])
    lines = [
        f"explain on {args.episodes} x {args.steps} rollouts of the bundled checkpoint, best of "
        f"{args.repeats} interleaved runs; {describe_here(torch.get_num_threads())}",
        "",
        "| configuration | seconds | vs defaults |",
        "|---|---|---|",
        *(
            f"| {name} | {min(values):.2f} | {min(values) / base:.1f}x |"
            for name, values in times.items()
        ),
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
