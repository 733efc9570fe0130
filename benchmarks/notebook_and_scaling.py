"""The notebook's workflow on reference-style code against the package, and how the package scales.

    python benchmarks/notebook_and_scaling.py notebook [--rounds 2] [--out benchmarks/notebook.md]
    python benchmarks/notebook_and_scaling.py scaling [--budget-s 60] [--out benchmarks/scaling.md]

``notebook``: ``bench/notebook.py``'s re-implementation of the source notebook (reference-style
modules, one episode after the other, per-step host copies, torchnmf as the notebook calls it,
the notebook's figure) and the package (``bench/end_to_end.py``'s audit, and ``run_rollouts`` one
episode at a time as ``bench/rollouts.py`` does), on the same checkpoint copy, B x 50 steps for
B = 16, 64, in one process, the three interleaved in ``--rounds`` rounds (best per stage).

``scaling``: ``bench/scaling.py``, one fresh subprocess per (B, L) cell.

One torch thread and one BLAS thread throughout. The checkpoint is copied to a temporary folder
first (training may rewrite the original).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
CHECKPOINT = HERE.parent / "examples" / "checkpoints" / "freeway_pomdp.pth"
NOTES_MARKER = "\nCommand: `python benchmarks/notebook_and_scaling.py notebook`"
"""Where notebook.md's hand-written notes start (kept when the table is rewritten)."""


def _notebook(args: argparse.Namespace) -> None:
    from bench import notebook as nb
    from bench.agent import STEPS, prepare_agent, rollout
    from bench.end_to_end import end_to_end
    from bench.machine import describe_here, describe_machine, machine_name, publish
    from bench.rollouts import one_at_a_time
    from bench.timing import Clock

    device = torch.device("cpu")
    clock = Clock(device)
    machine = machine_name(describe_machine(device), 1)
    started = time.perf_counter()
    results: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dreamer-notebook-") as work:
        source = prepare_agent(args.checkpoint, device, Path(work))
        if source.path is None:
            raise SystemExit(f"no readable checkpoint at {args.checkpoint}")
        path = str(source.path)
        gap = nb.first_posterior_matches(path, rollout(source.agent, 1).posterior_logits[0, 0])
        print(f"first posterior, reference modules vs package: max |diff| {gap:.2e}", flush=True)
        # warm-up of every path (imports, gymnasium registration, matplotlib's font cache)
        nb.notebook_workflow(path, 2, STEPS, figures=1)
        end_to_end(source, clock, 2)
        one_at_a_time(source.agent, 2)
        for episodes in args.batches:
            runs: dict[str, list[dict[str, float]]] = {"notebook": [], "package": [], "b1": []}
            for round_ in range(args.rounds):
                runs["notebook"].append(
                    nb.notebook_workflow(
                        path, episodes, STEPS, figures=args.figures, other_orientation=round_ == 0
                    )
                )
                runs["package"].append(end_to_end(source, clock, episodes).to_json())
                elapsed, _ = clock.once(lambda e=episodes: one_at_a_time(source.agent, e))
                elapsed_batched, _ = clock.once(lambda e=episodes: rollout(source.agent, e))
                runs["b1"].append({"b1": elapsed, "batched": elapsed_batched})
                print(
                    f"  {episodes} x {STEPS} round {round_ + 1}: notebook "
                    f"{runs['notebook'][-1]['total']:.1f} s, package "
                    f"{runs['package'][-1]['total']:.1f} s, B=1 baseline {elapsed:.1f} s",
                    flush=True,
                )
            results[episodes] = {
                "notebook": nb.best_stages(
                    [
                        {k: v for k, v in r.items() if k != "nmf fit (V = X)"}
                        for r in runs["notebook"]
                    ]
                )
                | {"nmf fit (V = X)": runs["notebook"][0]["nmf fit (V = X)"]},
                "package": nb.best_stages(runs["package"]),
                "b1": nb.best_stages(runs["b1"]),
            }
    import json

    (Path(tempfile.gettempdir()) / "notebook_results.json").write_text(json.dumps(results))
    lines = _notebook_table(results, STEPS, args, machine, describe_here(1), gap)
    lines.append(f"\nRun took {(time.perf_counter() - started) / 60:.1f} min.")
    publish(lines, None)
    text = "\n".join(lines) + "\n"
    if args.out.is_file():  # keep the hand-written notes below the generated table
        previous = args.out.read_text()
        if NOTES_MARKER in previous:
            text += previous[previous.index(NOTES_MARKER) :]
    args.out.write_text(text)


def _notebook_table(
    results: dict[int, dict[str, dict[str, float]]],
    steps: int,
    args: argparse.Namespace,
    machine: str,
    here: str,
    gap: float,
) -> list[str]:
    """The markdown table: per B, each stage of the notebook next to the package's."""

    def f(x: float) -> str:
        return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"

    lines = [
        f"## Notebook re-implementation vs package ({machine})",
        "",
        f"{here}. Best of {args.rounds} interleaved rounds per stage (notebook, package audit, "
        "package one-episode baseline, package batched rollouts), after one warm-up of each; "
        "Freeway POMDP, the bundled checkpoint (a private copy), episode b seeded with b. "
        f"First posterior of episode 0, reference modules vs package: max |diff| {gap:.1e}.",
        "",
        "| B x L | stage | notebook re-implementation (s) | package (s) | notebook / package |",
        "|---|---|---|---|---|",
    ]
    for episodes, r in results.items():
        nb, pk, b1 = r["notebook"], r["package"], r["b1"]
        cell = f"{episodes} x {steps}"
        nb_explain = nb["flatten"] + nb["nmf fit"] + nb["scores"]
        rows = [
            ("load checkpoint", nb["load"], pk["load"]),
            (
                "rollouts vs package batched (audit's rollouts stage)",
                nb["rollouts"],
                pk["rollouts"],
            ),
            ("rollouts vs package batched (timed alone)", nb["rollouts"], b1["batched"]),
            ("rollouts vs package one episode at a time (B=1 baseline)", nb["rollouts"], b1["b1"]),
            (
                "NMF fit (torchnmf, V = X.T) vs explain: factorize (mu, NNDSVDa)",
                nb["nmf fit"],
                pk["explain: factorize"],
            ),
            (
                "flatten + NMF + scores vs whole explain (+2 refits, sanity, deletion)",
                nb_explain,
                pk["explain"],
            ),
            (
                f"render: {nb_figs(args)} vs 4 render_rollout + factor gallery",
                nb["render"],
                pk["render"],
            ),
            ("**total**", nb["total"], pk["total"]),
        ]
        for name, ours, theirs in rows:
            lines.append(f"| {cell} | {name} | {f(ours)} | {f(theirs)} | {ours / theirs:.1f}x |")
        lines.append(
            f"| {cell} | (torchnmf on V = X [N*C, K] instead, first round) | "
            f"{f(nb['nmf fit (V = X)'])} | - | - |"
        )
    return lines


def nb_figs(args: argparse.Namespace) -> str:
    if args.figures >= 4:
        return "4 notebook figures"
    return f"4 notebook figures ({args.figures} drawn per run, x{4 / args.figures:g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    notebook = sub.add_parser("notebook")
    notebook.add_argument("--rounds", type=int, default=2)
    notebook.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    notebook.add_argument(
        "--figures", type=int, default=1, help="notebook figures drawn per run (scaled to 4)"
    )
    notebook.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    notebook.add_argument("--out", type=Path, default=HERE / "notebook.md")
    scaling = sub.add_parser("scaling")
    scaling.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    scaling.add_argument("--budget-s", type=float, default=60.0)
    scaling.add_argument("--out", type=Path, default=HERE / "scaling.md")
    scaling.add_argument("--json", type=Path, default=None)
    prof = sub.add_parser("profile", help="cProfile of one B x L audit's explain and render")
    prof.add_argument("episodes", type=int)
    prof.add_argument("steps", type=int)
    prof.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    cell = sub.add_parser("cell", help="(internal) one scaling cell in this process")
    cell.add_argument("checkpoint", type=Path)
    cell.add_argument("episodes", type=int)
    cell.add_argument("steps", type=int)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "notebook":
        _notebook(args)
        return
    from bench import scaling as sc

    if args.command == "cell":
        sc.run_cell(args.checkpoint, args.episodes, args.steps)
        return
    if args.command == "profile":
        with tempfile.TemporaryDirectory(prefix="dreamer-profile-") as work:
            copy = Path(work) / args.checkpoint.name
            shutil.copyfile(args.checkpoint, copy)
            print(sc.profile_cell(copy, args.episodes, args.steps))
        return
    with tempfile.TemporaryDirectory(prefix="dreamer-scaling-") as work:
        copy = Path(work) / args.checkpoint.name
        shutil.copyfile(args.checkpoint, copy)
        # Every cell imports the same snapshot of the package, even if the tree changes meanwhile.
        snapshot = Path(work) / "snapshot"
        shutil.copytree(
            HERE.parent / "pytest_dreamer_audit",
            snapshot / "pytest_dreamer_audit",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        path = os.pathsep.join([str(snapshot), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        sc.bench_scaling(
            [sys.executable, str(Path(__file__).resolve()), "cell", str(copy)],
            args.budget_s,
            args.out,
            args.json,
            env={**os.environ, "PYTHONPATH": path},
            source_digest=sc.tree_digest(snapshot / "pytest_dreamer_audit"),
        )


if __name__ == "__main__":
    main()
