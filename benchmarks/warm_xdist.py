"""A warm audit (every explanation cached) run serially and under pytest-xdist, side by side.

    python benchmarks/warm_xdist.py [--workers 2] [--rounds 3] [--out FILE]

The example suite on the bundled checkpoint: one cold run fills a scratch cache, then each round
runs the suite serially and with ``-n WORKERS`` against it (wall time of the whole pytest
process, start-up included). A warm run imports no torch, so xdist workers start light.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe_here, publish

ROOT = Path(__file__).resolve().parents[1]


def _run(cache: Path, artifacts: Path, extra: list[str]) -> float:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(ROOT / "examples" / "test_freeway_audit.py"),
        f"--dreamer-checkpoint={ROOT / 'examples' / 'checkpoints' / 'freeway_pomdp.pth'}",
        f"--dreamer-cache-dir={cache}",
        f"--dreamer-artifacts={artifacts}",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(
        command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        cache, artifacts = Path(scratch) / "cache", Path(scratch) / "artifacts"
        cold = _run(cache, artifacts, [])
        serial, parallel = [], []
        for _ in range(args.rounds):
            serial.append(_run(cache, artifacts, []))
            parallel.append(_run(cache, artifacts, ["-n", str(args.workers)]))
    lines = [
        f"warm example suite, best of {args.rounds} alternating rounds (the cold run that "
        f"filled the cache: {cold:.1f} s); {describe_here(1)}",
        "",
        "| run | seconds | vs serial |",
        "|---|---|---|",
        f"| serial | {min(serial):.2f} | 1.0x |",
        f"| -n {args.workers} | {min(parallel):.2f} | {min(parallel) / min(serial):.2f}x |",
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
