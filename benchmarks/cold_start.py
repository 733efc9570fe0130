"""Cold start, before/after a change: the CLI at 64 x 50 and the example suite, fresh processes.

``python benchmarks/cold_start.py --before /tmp/before --rounds 3`` runs, in each round, the
package at ``--before`` (a ``git worktree``, imported through ``PYTHONPATH`` with this venv) and
this checkout alternately:

* ``cli``: ``dreamer-audit explain`` of the bundled checkpoint at ``--episodes`` x ``--steps``
  (64 x 50) into a new folder, one torch thread, no progress bar;
* ``suite``: ``python -m pytest examples/`` in each side's own tree with its bundled checkpoint
  and a new ``--dreamer-cache-dir`` (nothing cached), ``-p no:cacheprovider``.

Each figure is the wall time of a whole process (Python start-up, imports, the work, exit). It
prints a Markdown table: every round's time per side, the median, and after / before.

``--floor`` also times, in the same rounds, what no audit can go below in this environment:
``python -c "import torch"`` (the CLI's floor) and ``python -m pytest`` on one test that only
imports torch, with every installed pytest plugin loaded as in the suite (the suite's floor).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = Path("examples") / "checkpoints" / "freeway_pomdp.pth"


def _env(root: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _cli(root: Path, episodes: int, steps: int) -> tuple[float, int]:
    script = shutil.which("dreamer-audit") or "dreamer-audit"
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, script, "explain", str(ROOT / CHECKPOINT)]
        command += ["--out", str(Path(scratch) / "out"), "--episodes", str(episodes)]
        command += ["--steps", str(steps), "--no-progress", "--threads", "1"]
        clock = time.perf_counter()
        code = subprocess.run(command, cwd=scratch, env=_env(root), capture_output=True).returncode
        return time.perf_counter() - clock, code


def _suite(root: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "pytest", "examples", "-q", "-p", "no:cacheprovider"]
        command += ["--dreamer-checkpoint", str(CHECKPOINT), f"--dreamer-cache-dir={scratch}"]
        clock = time.perf_counter()
        code = subprocess.run(command, cwd=root, env=_env(root), capture_output=True).returncode
        return time.perf_counter() - clock, code


_FLOOR_TEST = "def test_torch():\n    import torch\n\n    assert torch.zeros(1).sum() == 0\n"


def _floor(which: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        if which == "torch":
            command = [sys.executable, "-c", "import torch"]
        else:
            (Path(scratch) / "test_floor.py").write_text(_FLOOR_TEST)
            command = [sys.executable, "-m", "pytest", scratch, "-q", "-p", "no:cacheprovider"]
        clock = time.perf_counter()
        code = subprocess.run(command, cwd=scratch, env=_env(ROOT), capture_output=True).returncode
        return time.perf_counter() - clock, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, type=Path, help="a worktree of the before")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--only", nargs="+", choices=("cli", "suite"), default=["cli", "suite"])
    parser.add_argument("--floor", action="store_true", help="also time the floors (above)")
    args = parser.parse_args()
    floors: dict[str, list[float]] = {}
    sides = {"before": args.before.resolve(), "after": ROOT}
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for what in args.only:
            for side, root in sides.items():
                if what == "cli":
                    seconds, code = _cli(root, args.episodes, args.steps)
                else:
                    seconds, code = _suite(root)
                times.setdefault((what, side), []).append(seconds)
                print(
                    f"round {round_ + 1} {what} {side}: {seconds:.2f} s (exit {code})", flush=True
                )
        for which in ("torch", "pytest with torch") if args.floor else ():
            seconds, code = _floor(which)
            floors.setdefault(which, []).append(seconds)
            print(f"round {round_ + 1} floor {which}: {seconds:.2f} s (exit {code})", flush=True)
    print("\n| what | side | rounds (s) | median (s) |\n|---|---|---|---|")
    for what in args.only:
        for side in sides:
            values = times[(what, side)]
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"| {what} | {side} | {shown} | {statistics.median(values):.2f} |")
        ratio = statistics.median(times[(what, "after")]) / statistics.median(
            times[(what, "before")]
        )
        print(f"| {what} | after / before | | **{ratio:.2f}** |")
    for which, values in floors.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"| floor | {which} | {shown} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
