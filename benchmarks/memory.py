"""Peak memory of ``explain`` per episode-step, before/after a change, one fresh process each.

``python benchmarks/memory.py compare --before /tmp/before --sizes 16x50 1024x50`` runs, for each
B x L, a worker on the package at ``--before`` (a ``git worktree``) and one on this checkout,
interleaved, and prints a Markdown table. A worker rolls the bundled agent out (the rollouts are
the same code on both sides), records its resident set, runs ``explain`` with the defaults and
reports ``ru_maxrss`` above that resident set (torch's allocations are invisible to tracemalloc).
``identity`` compares the saved arrays of two workers (``--save``). ``slope --sizes 16x50 ...
1024x200`` runs this checkout alone at each size and fits explain's log-log time slope in B*L
and its peak's bytes per episode-step (least squares over every size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "checkpoints" / "freeway_pomdp.pth"
LATENT_BYTES = 20 * 20 * 4  # the bundled agent's posterior per episode-step (float32)


def _resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.root)
    import dataclasses
    import gc

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from pytest_dreamer_audit.analysis.pipeline import explain
    from pytest_dreamer_audit.model.checkpoint import load_checkpoint
    from pytest_dreamer_audit.results.explanation import ExplainConfig
    from pytest_dreamer_audit.rollout.rollouts import run_rollouts
    from pytest_dreamer_audit.testing import tiny_agent

    agent = tiny_agent() if args.agent == "tiny" else load_checkpoint(CHECKPOINT, device="cpu")
    trajectory = run_rollouts(agent, episodes=args.episodes, steps=args.steps, seed=0)
    gc.collect()
    start = _resident_bytes()
    start_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    clock = time.perf_counter()
    config = ExplainConfig(rank=3) if args.agent == "tiny" else ExplainConfig()  # tiny: 5 classes
    marks: list[tuple[str, int, int, float]] = []

    def progress(label: str) -> None:  # where the peak is: the high-water mark at each stage
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        marks.append((label, _resident_bytes() - start, peak - start, time.perf_counter() - clock))

    explanation = explain(trajectory, config, agent=agent, progress=progress)
    progress("end")
    seconds = time.perf_counter() - clock
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.save:
        arrays = {}
        for field in dataclasses.fields(explanation):
            value = getattr(explanation, field.name)
            if isinstance(value, np.ndarray):
                arrays[field.name] = value
        metrics = dataclasses.asdict(explanation.metrics)
        arrays["metrics"] = np.array([metrics[k] for k in sorted(metrics)], dtype=np.float64)
        stages = [dataclasses.astuple(s) for s in explanation.randomization]
        arrays["randomization"] = np.array([[x for x in s if isinstance(x, float)] for s in stages])
        np.savez(args.save, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
    print(
        json.dumps(
            {
                "root": args.root,
                "episode_steps": args.episodes * args.steps,
                "start": start,
                "peak": peak,
                "above_start": peak - start if peak > start_peak else None,
                "seconds": seconds,
                "stages": marks if args.stages else None,
            }
        )
    )


def _run(
    root: str, agent: str, episodes: int, steps: int, save: str | None, live: bool = False
) -> dict[str, Any]:
    command = [sys.executable, __file__, "worker", "--root", root, "--agent", agent]
    command += ["--episodes", str(episodes), "--steps", str(steps)]
    if save:
        command += ["--save", save]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if live:  # every large block mmapped and returned when freed: the peak of the live set
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _compare(args: argparse.Namespace) -> None:
    rows = []
    for size in args.sizes:
        episodes, steps = map(int, size.split("x"))
        before = _run(args.before, args.agent, episodes, steps, None, args.live)
        after = _run(str(ROOT), args.agent, episodes, steps, None, args.live)
        rows.append((size, before, after))
        print(size, json.dumps(before), json.dumps(after), flush=True)
    print(
        "| B x L | side | explain peak above start (MB) | bytes / episode-step | x posterior "
        "| process max RSS (MB) | explain (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for size, before, after in rows:
        for side, cell in (("before", before), ("after", after)):
            above = cell["above_start"] or 0
            per = above / cell["episode_steps"]
            print(
                f"| {size} | {side} | {above / 1e6:.0f} | {per:,.0f} | {per / LATENT_BYTES:.1f} "
                f"| {cell['peak'] / 1e6:.0f} | {cell['seconds']:.1f} |"
            )
        ratio = (after["above_start"] or 0) / max(before["above_start"] or 1, 1)
        peak, seconds = after["peak"] / before["peak"], after["seconds"] / before["seconds"]
        print(f"| {size} | after / before | {ratio:.2f} | | | {peak:.2f} | {seconds:.2f} |")


def _slope(args: argparse.Namespace) -> None:
    import numpy as np

    cells = []
    for size in args.sizes:
        episodes, steps = map(int, size.split("x"))
        cell = _run(str(ROOT), args.agent, episodes, steps, None)
        cells.append((size, cell))
        print(size, json.dumps(cell), flush=True)
    print(
        "| B x L | episode-steps | explain (s) | explain peak above start (MB) | x posterior "
        "| process max RSS (MB) |"
    )
    print("|---|---|---|---|---|---|")
    for size, cell in cells:
        n, above = cell["episode_steps"], cell["above_start"] or 0
        print(
            f"| {size} | {n:,} | {cell['seconds']:.2f} | {above / 1e6:.0f} "
            f"| {above / n / LATENT_BYTES:.1f} | {cell['peak'] / 1e6:.0f} |"
        )
    n = np.array([cell["episode_steps"] for _, cell in cells], dtype=float)
    seconds = np.array([cell["seconds"] for _, cell in cells])
    above = np.array([cell["above_start"] or 0 for _, cell in cells], dtype=float)
    time_slope = np.polyfit(np.log(n), np.log(seconds), 1)[0]
    per_step = np.polyfit(n, above, 1)[0]
    print(
        f"log-log time slope {time_slope:.3f} over {len(n)} sizes; peak slope "
        f"{per_step:,.0f} bytes per episode-step ({per_step / LATENT_BYTES:.2f} x the posterior)"
    )


def _identity(args: argparse.Namespace) -> None:
    import numpy as np

    a, b = np.load(args.a), np.load(args.b)
    assert sorted(a.files) == sorted(b.files), (a.files, b.files)
    worst = 0.0
    for name in a.files:
        x, y = a[name], b[name]
        assert x.shape == y.shape, (name, x.shape, y.shape)
        if x.dtype.kind in "fc":
            same = np.allclose(x, y, rtol=1e-4, atol=1e-5, equal_nan=True)
            diff = float(np.nanmax(np.abs(x - y))) if x.size else 0.0
            worst = max(worst, diff)
        else:
            same, diff = bool(np.array_equal(x, y)), 0.0
        print(f"{name}: {'same' if same else 'DIFFERENT'} (max |diff| {diff:.3g})")
        assert same, name
    print(f"identical to float tolerance; largest difference {worst:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--root", required=True)
    worker.add_argument("--agent", choices=("bundled", "tiny"), default="bundled")
    worker.add_argument("--episodes", type=int, required=True)
    worker.add_argument("--steps", type=int, required=True)
    worker.add_argument("--save")
    worker.add_argument(
        "--stages",
        action="store_true",
        help="at each stage's start: its label, resident set and high-water mark above the start "
        "(bytes) and seconds since explain began",
    )
    compare = sub.add_parser("compare")
    compare.add_argument("--before", required=True)
    compare.add_argument("--agent", choices=("bundled", "tiny"), default="bundled")
    compare.add_argument("--sizes", nargs="+", default=["16x50", "1024x50"])
    compare.add_argument(
        "--live", action="store_true", help="MALLOC_MMAP_THRESHOLD_=128k: no heap left resident"
    )
    slope = sub.add_parser("slope")
    slope.add_argument("--agent", choices=("bundled", "tiny"), default="bundled")
    slope.add_argument("--sizes", nargs="+", default=["16x50", "64x50", "256x50", "1024x200"])
    identity = sub.add_parser("identity")
    identity.add_argument("a")
    identity.add_argument("b")
    args = parser.parse_args()
    {"worker": _worker, "compare": _compare, "slope": _slope, "identity": _identity}[args.command](
        args
    )


if __name__ == "__main__":
    main()
