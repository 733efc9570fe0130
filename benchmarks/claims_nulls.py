"""The claims table with both nulls against the table with circular shifts alone, side by side.

    python benchmarks/claims_nulls.py --before <commit> [--episodes 64] [--rounds 2] [--out FILE]

Each round times ``claims_table`` on the explanation of the bundled agent (``B`` x 50 steps,
seed 0, the plugin's defaults otherwise) in a fresh process of the package as it is now and of
the package at ``--before`` (a ``git worktree`` of that commit), interleaved (before, after,
before, after, ...), so both see the same machine load. Each package computes the explanation
once into its own cache (the same rollouts and fit: the analysis did not change) and every later
round reads it; each timing is the best of 5 calls after one warm-up call, one torch thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.machine import describe_here, publish

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "checkpoints" / "freeway_pomdp.pth"
_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

_TIME = """
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from pytest_dreamer_audit.plugin.audit import AuditCache
from pytest_dreamer_audit.settings import AuditSettings
try:
    from pytest_dreamer_audit.results.claims import claims_table
except ImportError:  # the package before the claims module
    from pytest_dreamer_audit.results.semantics import claims_table
settings = AuditSettings(checkpoint=sys.argv[1], episodes=int(sys.argv[2]))
e = AuditCache(Path(sys.argv[3])).explanation(settings).explanation
claims_table(e)
best = min((lambda s: (claims_table(e), time.perf_counter() - s)[1])(time.perf_counter())
           for _ in range(5))
print(best)
"""


def _seconds(package: Path, episodes: int, cache: Path) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _TIME, str(CHECKPOINT), str(episodes), str(cache)],
        check=True, capture_output=True, text=True, cwd=package,
        env={**_ENV, "PYTHONPATH": str(package)},
    )  # fmt: skip
    return float(result.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="claims-nulls-") as scratch:
        root = Path(scratch)
        old = root / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old), args.before],
            check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        try:
            rows = []
            for round_ in range(args.rounds):
                before = _seconds(old, args.episodes, root / "cache-before")
                after = _seconds(ROOT, args.episodes, root / "cache-after")
                rows.append(
                    f"| {round_ + 1} | {before:.3f} | {after:.3f} | {after / before:.2f}x |"
                )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old)], capture_output=True, cwd=ROOT
            )
    lines = [
        f"# claims_table at {args.episodes} x 50, circular shifts alone ({args.before[:10]}) "
        "against every null (now)",
        "",
        describe_here(1),
        "",
        "| round | shifts alone (s) | every null (s) | ratio |",
        "|---|---:|---:|---:|",
        *rows,
    ]
    publish(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
