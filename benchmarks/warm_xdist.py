"""A warm audit (every explanation cached) run serially and under pytest-xdist, side by side.

    python benchmarks/warm_xdist.py [--workers 2 4] [--rounds 3] [--out FILE]

The example suite on the bundled checkpoint: one cold run fills a scratch cache, then each round
runs the suite serially and with ``-n W`` for every W against it (wall time of the whole pytest
process, start-up included). A warm run imports no torch, so xdist workers start light.

The control is xdist's own cost: the same runs of a suite of one empty test (pytest's start-up,
the plugins' imports and, under xdist, starting the workers), so what the audit adds can be told
apart from what any xdist run pays. Python writes bytecode here as on a developer's machine
(``PYTHONDONTWRITEBYTECODE`` is dropped: without ``.pyc`` files every worker recompiles and
pytest re-rewrites every plugin module, which no normal setup does).
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
_ENV = {
    **{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
    "OMP_NUM_THREADS": "1",
}


def _seconds(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=_ENV, cwd=cwd)
    return time.perf_counter() - start


def _audit(cache: Path, artifacts: Path, extra: list[str]) -> list[str]:
    return [
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


def _empty(folder: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder), *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runs = [[], *(["-n", str(workers)] for workers in args.workers)]
    names = ["serial", *(f"-n {workers}" for workers in args.workers)]
    audit: dict[str, list[float]] = {name: [] for name in names}
    empty: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        cache, artifacts, suite = folder / "cache", folder / "artifacts", folder / "empty"
        suite.mkdir()
        (suite / "test_empty.py").write_text("def test_nothing() -> None:\n    pass\n")
        cold = _seconds(_audit(cache, artifacts, []), ROOT)
        for _ in range(args.rounds):
            for name, extra in zip(names, runs, strict=True):
                audit[name].append(_seconds(_audit(cache, artifacts, extra), ROOT))
                empty[name].append(_seconds(_empty(suite, extra), suite))
    serial = min(audit["serial"])
    lines = [
        f"warm example suite, best of {args.rounds} alternating rounds (the cold run that "
        f"filled the cache: {cold:.1f} s); {describe_here(1)}",
        "",
        "| run | warm audit (s) | vs serial | one empty test (s) | audit minus empty (s) |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        best, floor = min(audit[name]), min(empty[name])
        lines.append(
            f"| {name} | {best:.2f} | {best / serial:.2f}x | {floor:.2f} | {best - floor:.2f} |"
        )
    publish(lines, args.out)


if __name__ == "__main__":
    main()
