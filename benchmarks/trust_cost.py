"""The default ``explain``'s cost at 16 x 50 against the code before the trust checks (issue 28).

``python benchmarks/trust_cost.py --side before=/tmp/before28 --side head=/tmp/head --rounds 3``
runs, in each round, one fresh process per side (this checkout last, as ``after``), each
rolling the bundled agent out once (16 x 50, seed 0), running ``explain`` with the defaults
once untimed and then ``--repeats`` times, and reporting the best time and the stage times of
that run (its ``progress`` labels). One torch thread. Prints a Markdown table with every side's
best over the rounds and its ratio to the first side.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "checkpoints" / "freeway_pomdp.pth"


def _worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.root)
    import torch

    torch.set_num_threads(1)
    from pytest_dreamer_audit.analysis.pipeline import explain
    from pytest_dreamer_audit.model.checkpoint import load_checkpoint
    from pytest_dreamer_audit.results.explanation import ExplainConfig
    from pytest_dreamer_audit.rollout.rollouts import run_rollouts

    agent = load_checkpoint(CHECKPOINT, device="cpu")
    trajectory = run_rollouts(agent, episodes=args.episodes, steps=args.steps, seed=0)
    explain(trajectory, ExplainConfig(), agent=agent)
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        marks = [("start", time.perf_counter())]

        def note(label: str, marks: list[tuple[str, float]] = marks) -> None:
            marks.append((label.split()[0], time.perf_counter()))

        explain(trajectory, ExplainConfig(), agent=agent, progress=note)
        marks.append(("end", time.perf_counter()))
        stages: dict[str, float] = {"total": marks[-1][1] - marks[0][1]}
        for (label, start), (_, stop) in itertools.pairwise(marks):
            stages[label] = stages.get(label, 0.0) + stop - start
        if stages["total"] < best.get("total", float("inf")):
            best = stages
    print(json.dumps(best))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker")
    worker.add_argument("--root", required=True)
    worker.add_argument("--episodes", type=int, default=16)
    worker.add_argument("--steps", type=int, default=50)
    worker.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--side", action="append", default=[], help="NAME=WORKTREE, in order")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.command == "worker":
        _worker(args)
        return
    sides = [tuple(s.split("=", 1)) for s in args.side] + [("after", str(ROOT))]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    best: dict[str, dict[str, float]] = {}
    for round_ in range(args.rounds):
        for name, root in sides:
            command = [sys.executable, __file__, "worker", "--root", root]
            command += ["--repeats", str(args.repeats)]
            out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            stages = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"round {round_ + 1} {name}: {json.dumps(stages)}", flush=True)
            if stages["total"] < best.get(name, {}).get("total", float("inf")):
                best[name] = stages
    first = sides[0][0]
    labels = ["start", "factorize", "stability", "sanity", "deletion"]
    print("\n| side | explain (s) | x " + first + " | " + " | ".join(labels) + " |")
    print("|---" * (3 + len(labels)) + "|")
    for name, _ in sides:
        stages = best[name]
        cells = " | ".join(f"{stages.get(label, 0.0):.3f}" for label in labels)
        ratio = stages["total"] / best[first]["total"]
        print(f"| {name} | {stages['total']:.3f} | {ratio:.2f} | {cells} |")


if __name__ == "__main__":
    main()
