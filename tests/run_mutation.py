"""Mutation-test one module against the tests that cover it: ``tox -e mutation -- MODULE``.

mutmut 3 reads a single ``[tool.mutmut]`` table and mutates every file of ``source_paths`` in a
``mutants/`` folder beside it. To score one module at a time (the whole suite under every mutant
takes hours on two cores) and leave the working tree alone, this copies the package, the tests
and ``pyproject.toml`` to a scratch folder, narrows ``only_mutate`` and the test selection there,
runs ``mutmut run`` and prints ``killed/total``. The scratch folder is kept, so
``cd <folder> && mutmut show NAME`` explains a survivor.

Usage:
    python tests/run_mutation.py pytest_dreamer_audit/results/nulls.py [--tests T ...]
        [--max-children 1] [--workdir DIR] [--deselect NODEID ...] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_NULLS_TESTS = ["tests/test_episode_swaps.py", "tests/test_nulls.py", "tests/test_semantics.py"]
COVERING_TESTS = {
    "pytest_dreamer_audit/results/episode_swaps.py": [
        *_NULLS_TESTS,
        "tests/test_mutants_episode_swaps.py",
    ],
    "pytest_dreamer_audit/results/two_nulls.py": [*_NULLS_TESTS, "tests/test_mutants_two_nulls.py"],
    "pytest_dreamer_audit/results/nulls.py": [*_NULLS_TESTS, "tests/test_mutants_nulls.py"],
    # test_assertions and test_semantics alone leave 195 mutants without a test (the probe,
    # reward, imagination, deletion-curve and trustworthy assertions are tested in these).
    "pytest_dreamer_audit/results/assertions.py": [
        "tests/test_assertions.py",
        "tests/test_semantics.py",
        "tests/test_probes.py",
        "tests/test_imagination.py",
        "tests/test_curves.py",
        "tests/test_trustworthy.py",
        "tests/test_strata.py",
        "tests/test_mutants_assertions.py",
    ],
    "pytest_dreamer_audit/results/trustworthy.py": [
        "tests/test_trustworthy.py",
        "tests/test_assertions.py",
        "tests/test_mutants_assertions.py",
    ],
    "pytest_dreamer_audit/results/bootstrap.py": [
        "tests/test_episode_swaps.py",
        "tests/test_mutants_two_nulls.py",
        "tests/test_mutants_claims.py",
        "tests/test_mutants_bootstrap.py",
    ],
    "pytest_dreamer_audit/results/picks.py": [
        "tests/test_picks.py",
        "tests/test_mutants_claims.py",
        "tests/test_mutants_semantics.py",
        "tests/test_assertions.py",
        "tests/test_mutants_picks.py",
    ],
    "pytest_dreamer_audit/results/event_names.py": [
        "tests/test_event_names.py",
        "tests/test_semantics.py",
        "tests/test_mutants_event_names.py",
    ],
    "pytest_dreamer_audit/results/assignment.py": ["tests/test_assignment.py"],
    # session 14 ran only the trust sample's functions (--only '...x__trust_sample__mutmut_*',
    # '...x__probe_control__mutmut_*', '...x__randomization__mutmut_*'): 956 mutants in all
    "pytest_dreamer_audit/analysis/pipeline.py": [
        "tests/test_trust_sample.py",
        "tests/test_explain.py",
        "tests/test_randomization.py",
        "tests/test_mutants_randomization.py",
    ],
    "pytest_dreamer_audit/results/similarity.py": [
        "tests/test_baseline.py",
        "tests/test_mutants_baseline.py",
        "tests/test_randomization.py",
        "tests/test_mutants_randomization.py",
        "tests/test_mutants_similarity.py",
    ],
    "pytest_dreamer_audit/results/baseline.py": [
        "tests/test_baseline.py",
        "tests/test_mutants_baseline.py",
    ],
    # test_hardening and test_audit cover the cache too, through pytester and real entries (a
    # minute a mutant); test_cache exercises every branch they reach.
    "pytest_dreamer_audit/plugin/cache.py": ["tests/test_cache.py", "tests/test_mutants_cache.py"],
    # test_nulls' null-world test (11 s) covers fact_rows, claim_context, fact_control and
    # table_facts: a full run takes about an hour; `--tests` without it, minutes.
    "pytest_dreamer_audit/results/semantics.py": [
        "tests/test_semantics.py",
        "tests/test_event_names.py",
        "tests/test_strata.py",
        "tests/test_episode_swaps.py",
        "tests/test_nulls.py",
        "tests/test_mutants_semantics.py",
    ],
    "pytest_dreamer_audit/analysis/randomization.py": [
        "tests/test_randomization.py",
        "tests/test_mutants_randomization.py",
    ],
    "pytest_dreamer_audit/analysis/curves.py": [
        "tests/test_curves.py",
        "tests/test_mutants_curves.py",
    ],
}
"""The tests that cover each module (a module not listed needs ``--tests``)."""


def _mutmut_table(module: str, tests: list[str], deselect: list[str]) -> str:
    base = ROOT / "pyproject.toml"
    text = base.read_text("utf-8")
    # Drop the repository's own table (the defaults) and write the narrowed one in its place.
    text = re.sub(r"\n\[tool\.mutmut\]\n(?:(?!\n\[).)*", "\n", text, flags=re.S)
    table = {
        "source_paths": ["pytest_dreamer_audit"],
        "only_mutate": [module],
        "pytest_add_cli_args": [
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-q",
            *(arg for node in deselect for arg in ("--deselect", node)),
        ],
        "pytest_add_cli_args_test_selection": tests,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return text.rstrip() + "\n\n[tool.mutmut]\n" + "\n".join(lines) + "\n"


def _score(workdir: Path, module: str, only: set[str]) -> tuple[dict[str, int], list[str]]:
    """Counts by outcome and the names of the survivors, from mutmut's ``.meta`` file (of the
    mutants ``only`` names or matches as ``fnmatch`` patterns, as ``mutmut run`` does)."""
    from mutmut.stats import status_by_exit_code

    meta = json.loads((workdir / "mutants" / (module + ".meta")).read_text("utf-8"))
    counts: dict[str, int] = {}
    survivors = []
    for name, code in meta["exit_code_by_key"].items():
        if only and name not in only and not any(fnmatch.fnmatch(name, p) for p in only):
            continue
        kind = status_by_exit_code[code]
        counts[kind] = counts.get(kind, 0) + 1
        if kind in ("survived", "no tests"):
            survivors.append(name)
    return counts, sorted(survivors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="a file of the package, e.g. " + next(iter(COVERING_TESTS)))
    parser.add_argument("--tests", nargs="+", help="test files (default: COVERING_TESTS)")
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument(
        "--deselect",
        action="append",
        default=[],
        metavar="NODEID",
        help="a slow test left out of this run (repeatable); rerun its survivors with --only",
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        help="mutant names or fnmatch patterns (an earlier run's survivors, or one function's "
        "mutants: 'MODULE.x_NAME__mutmut_*') to run, scored alone",
    )
    args = parser.parse_args(argv)
    module = Path(args.module).as_posix()
    tests = args.tests or COVERING_TESTS.get(module)
    if not tests:
        parser.error(
            f"no covering tests known for {module}; pass --tests (known: {list(COVERING_TESTS)})"
        )
    tests = [t for t in tests if (ROOT / t).exists()]
    workdir = (
        args.workdir or Path(tempfile.gettempdir()) / "dreamer-audit-mutation" / Path(module).stem
    )
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "pytest_dreamer_audit", workdir / "pytest_dreamer_audit", ignore=ignore)
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=ignore)
    (workdir / "pyproject.toml").write_text(_mutmut_table(module, tests, args.deselect), "utf-8")
    print(f"mutating {module} against {tests} in {workdir}", flush=True)
    run = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
    subprocess.run([*run, *args.only], cwd=workdir, check=False)
    counts, survivors = _score(workdir, module, set(args.only))
    total = sum(counts.values())
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    print(f"\n{module}: killed {killed}/{total} ({100 * killed / max(total, 1):.0f}%) {counts}")
    print("survivors (cd there and `mutmut show NAME`):", *survivors, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
