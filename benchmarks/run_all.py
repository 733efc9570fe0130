"""Every benchmark of the package in one run: rollouts, NMF, rendering, end to end.

Run: ``python benchmarks/run_all.py [--quick] [--device cpu|cuda] [--threads N] [--out DIR]``.
Writes ``benchmarks/results/<machine>.json`` and ``<machine>.md`` (or into ``--out``) and prints
the markdown tables. ``--profile`` instead writes cProfile summaries of the same work to
``<machine>-profile.txt`` (no timings); ``--table FILE.json`` prints the tables of a results file.

Every figure of one run comes from the same process on the same machine, so ratios compare like
with like. Each is the best of ``--repeats`` runs after one warm-up run (the 6.4M-row NMF cases:
one run, warmed up by the 64k-row case of the same code). On CUDA every timed region ends with
``torch.cuda.synchronize()``. The suites live in ``benchmarks/bench/``, one module each (details
in ``benchmarks/README.md``): ``rollouts``, ``nmf``, ``render`` and ``end_to_end``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import torch
from bench.agent import AgentSource, prepare_agent
from bench.end_to_end import EndToEndRow, bench_end_to_end
from bench.machine import describe_machine, machine_name
from bench.nmf import NMFSuite, bench_nmf
from bench.nmf_data import BASE_ROWS, posterior_rows
from bench.profiling import profile
from bench.record import SCHEMA, SUITES, RunArgs, RunResult, read_results, write_results
from bench.render import RenderSuite, bench_render
from bench.report import check_goals, markdown
from bench.rollouts import RolloutSuite, bench_rollouts
from bench.timing import Clock

from pytest_dreamer_audit.model.devices import resolve_device

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_CHECKPOINT = HERE.parent / "examples" / "checkpoints" / "freeway_pomdp.pth"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 1 repeat (minutes)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op and BLAS threads (default 1: on a shared machine more threads "
        "contend with the other load and make torch ops far slower)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 3)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--name", default=None, help="result file name (default: the machine)")
    parser.add_argument(
        "--sklearn-budget-s",
        type=float,
        default=240.0,
        help="a big scikit-learn fit estimated above this is scaled from 1/10 of the iterations",
    )
    parser.add_argument("--only", nargs="+", choices=SUITES, default=SUITES)
    parser.add_argument("--note", action="append", default=[], help="a note for the report")
    parser.add_argument("--profile", action="store_true", help="write cProfile summaries only")
    parser.add_argument(
        "--table", type=Path, default=None, help="print the markdown of a results JSON and exit"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="folder the results files are written to (default benchmarks/results)",
    )
    return parser.parse_args()


def run_suites(
    args: argparse.Namespace, source: AgentSource, clock: Clock, repeats: int
) -> tuple[
    RolloutSuite | None, NMFSuite | None, RenderSuite | None, tuple[EndToEndRow, ...] | None
]:
    """The suites of ``--only``, at the sizes of ``--quick`` or of a full run."""
    rollouts = nmf = render = end_to_end = None
    if "rollouts" in args.only:
        batches = [16, 64] if args.quick else [16, 64, 256]
        rollouts = bench_rollouts(source.agent, clock, batches, repeats, 1 if args.quick else 2)
    if "nmf" in args.only:
        sizes = [BASE_ROWS, 10 * BASE_ROWS] if args.quick else [BASE_ROWS, 100 * BASE_ROWS]
        base = posterior_rows(source.agent, clock.device)
        nmf = bench_nmf(base, clock, sizes, repeats, args.threads, args.sklearn_budget_s)
        del base
    if "render" in args.only:
        render = bench_render(source, repeats)
    if "end_to_end" in args.only:
        end_to_end = bench_end_to_end(source, clock, [16] if args.quick else [16, 64], repeats)
    return rollouts, nmf, render, end_to_end


def main() -> None:
    args = parse_args()
    if args.table is not None:
        print(markdown(read_results(args.table)), end="")
        return

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    clock = Clock(device)
    repeats = args.repeats or (1 if args.quick else 3)
    machine = describe_machine(device)
    name = args.name or machine_name(machine, args.threads)
    started = time.perf_counter()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    notes = [
        f"torch intra-op threads and NumPy BLAS threads held to {args.threads} (--threads)",
        *args.note,
    ]
    print(f"benchmarks on {name}: {machine.cpu_model}, device {device}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dreamer-bench-") as workdir:
        source = prepare_agent(args.checkpoint, device, Path(workdir))
        if source.path is None:
            notes.append(f"random reference-size agent: {source.description.note}")
        args.out.mkdir(parents=True, exist_ok=True)
        if args.profile:
            text = profile(source, clock, posterior_rows(source.agent, device))
            out = args.out / f"{name}-profile.txt"
            out.write_text(text)
            print(f"written: {out}")
            return
        rollouts, nmf, render, end_to_end = run_suites(args, source, clock, repeats)
    machine = replace(machine, load_average_at_end=os.getloadavg())
    result = RunResult(
        schema=SCHEMA,
        name=name,
        date=date,
        mode="quick" if args.quick else "full",
        args=RunArgs(
            quick=args.quick,
            device=args.device,
            threads=args.threads,
            repeats=repeats,
            checkpoint=str(args.checkpoint),
            name=args.name,
            sklearn_budget_s=args.sklearn_budget_s,
            only=tuple(args.only),
            note=tuple(args.note),
            profile=args.profile,
            table=None,
        ),
        machine=machine,
        notes=tuple(notes),
        agent=source.description,
        rollouts=rollouts,
        nmf=nmf,
        render=render,
        end_to_end=end_to_end,
        duration_s=time.perf_counter() - started,
    )
    result = replace(result, goals=check_goals(result))
    table = markdown(result)
    json_path = args.out / f"{name}.json"
    write_results(result, json_path)
    (args.out / f"{name}.md").write_text(table)
    print("\n" + table)
    print(f"written: {json_path} and {json_path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
