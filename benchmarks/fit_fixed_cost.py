"""A fit's fixed cost against its rows (issue 33 item 4), before/after a change.

``python benchmarks/fit_fixed_cost.py --before /tmp/before`` times, for 64k to 1M rows of
posterior-like probabilities (softmax of seeded normals, 20 classes), NNDSVDa's init and a whole
one-iteration HALS fit (init, one pass, the closing norms) on the package at ``--before`` (a
``git worktree``) and on this checkout, interleaved, in one process each (one torch thread,
best of three), and prints a Markdown table with the per-row cost in ns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _worker(root: str, rows: int) -> dict[str, float]:
    sys.path.insert(0, root)
    import time

    import torch

    torch.set_num_threads(1)
    from pytest_dreamer_audit.analysis.factorize import NMFConfig, fit_nmf, nndsvda_init

    generator = torch.Generator().manual_seed(0)
    matrix = torch.softmax(torch.randn(rows, 20, generator=generator) * 3, dim=-1)
    config = NMFConfig(rank=10, max_iter=1, tol=0.0)

    def best(run: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    return {
        "init": best(lambda: nndsvda_init(matrix, 10)),
        "fit": best(lambda: fit_nmf(matrix, config)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before")
    parser.add_argument("--worker", nargs=2, metavar=("ROOT", "ROWS"))
    parser.add_argument("--rows", nargs="+", type=int, default=[65_536, 262_144, 1_048_576])
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker[0], int(args.worker[1]))))
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print("| rows | side | NNDSVDa init (ms) | init ns/row | 1-iteration fit (ms) | fit ns/row |")
    print("|---|---|---|---|---|---|")
    for rows in args.rows:
        cells = {}
        for side, root in (("before", args.before), ("after", str(ROOT))):
            command = [sys.executable, __file__, "--worker", root, str(rows)]
            out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            cells[side] = json.loads(out.stdout.strip().splitlines()[-1])
            init, fit = cells[side]["init"], cells[side]["fit"]
            print(
                f"| {rows:,} | {side} | {init * 1e3:.1f} | {init * 1e9 / rows:.0f} "
                f"| {fit * 1e3:.1f} | {fit * 1e9 / rows:.0f} |",
                flush=True,
            )
        b, a = cells["before"], cells["after"]
        print(
            f"| {rows:,} | after / before | {a['init'] / b['init']:.2f} | | "
            f"{a['fit'] / b['fit']:.2f} | |",
            flush=True,
        )


if __name__ == "__main__":
    main()
