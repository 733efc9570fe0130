"""NMF by time to accuracy: error against wall time of every solver, from the same init.

For each kind of posteriors (nearly one-hot: the agent's; nearly uniform: the same network with
every posterior-making layer permuted, ``analysis/randomization.py``) and each size, every solver
runs from the package's ``nndsvda_init(X, 10)`` for a few iteration counts (``tol = 0``, one run
per count, the fit restarted from the init each time) and its relative error is recomputed the
same way for all (``nmf_data.relative_error``, float64). Then each solver's default fit
(``tol = 1e-4``, 200 iterations at most). The table's *time to best* is the first checkpoint
whose error is within ``1e-4`` relative of the best error any solver reached on that matrix.

Run: ``python -m benchmarks.bench.nmf_curves [--sizes 16000,64000,1280000,6400000]``; it writes
``benchmarks/nmf_curves.md`` (rewritten after every matrix, so a cut run keeps what it measured).
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pytest_dreamer_audit.analysis.factorize import fit_nmf, nndsvda_init
from pytest_dreamer_audit.analysis.randomization import LAYERS, permute_parameters
from pytest_dreamer_audit.results.config import NMFConfig

from .agent import prepare_agent
from .machine import describe_here
from .nmf import blas_threads, sklearn_nmf_class
from .nmf_data import RANK, posterior_rows, relative_error, scaled_rows

CHECKPOINT = Path("examples/checkpoints/freeway_pomdp.pth")
OUT = Path("benchmarks/nmf_curves.md")
CLOSE = 1e-4
"""A solver reached the best error when its error is within this relative margin of it."""
PERMUTATION_SEED = 12345
"""The sanity check's default seed (``ExplainConfig.sanity_seed``)."""

Fit = Callable[[int, float], tuple[torch.Tensor, torch.Tensor, int]]
"""``fit(max_iter, tol) -> (A, D, iterations)`` from the shared init."""


@dataclass(frozen=True)
class Point:
    iterations: int
    seconds: float
    error: float


@dataclass(frozen=True)
class Curve:
    solver: str
    points: tuple[Point, ...]
    default: Point | None
    """The solver's own stopping rule (tol 1e-4, 200 iterations at most); None where skipped."""


def _package(x: torch.Tensor, solver: str) -> Fit:
    def fit(max_iter: int, tol: float) -> tuple[torch.Tensor, torch.Tensor, int]:
        result = fit_nmf(x, NMFConfig(rank=RANK, solver=solver, max_iter=max_iter, tol=tol))  # type: ignore[arg-type]
        return result.activations, result.prototypes, result.iterations

    return fit


def _sklearn(x: torch.Tensor, solver: str) -> Fit | None:
    nmf_class = sklearn_nmf_class()
    if nmf_class is None:
        return None
    host = x.cpu().numpy()

    def fit(max_iter: int, tol: float) -> tuple[torch.Tensor, torch.Tensor, int]:
        a, d = nndsvda_init(x, RANK)
        model = nmf_class(
            n_components=RANK, init="custom", solver=solver, tol=tol, max_iter=max_iter
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the cap is the point
            w = model.fit_transform(host, W=a.cpu().numpy(), H=d.cpu().numpy())
        return torch.from_numpy(w), torch.from_numpy(model.components_), int(model.n_iter_)

    return fit


def _plan(rows: int) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Iteration checkpoints per solver and whether its default fit runs, by matrix size: the
    big matrices get few checkpoints (this is a one-core budget on a shared machine)."""
    if rows <= 64_000:
        many = (1, 2, 3, 5, 8, 12, 20, 35, 60, 100)
        return {
            "package hals": (many, True),
            "package mu": ((10, 20, 50, 100, 200), True),
            "package torchnmf": ((10, 50), False),
            "scikit-learn cd": ((*many, 200), True),
            "scikit-learn mu": ((10, 50, 200), True),
        }
    if rows <= 1_280_000:
        return {
            "package hals": ((2, 4, 8, 16, 32), True),
            "package mu": ((10, 50), True),
            "package torchnmf": ((10,), False),
            "scikit-learn cd": ((2, 4, 8, 16, 32), True),
            "scikit-learn mu": ((10,), False),
        }
    return {
        "package hals": ((3, 8, 20), True),
        "package mu": ((20,), False),
        "scikit-learn cd": ((3, 8, 20), False),
    }


def _fits(x: torch.Tensor) -> dict[str, Fit | None]:
    return {
        "package hals": _package(x, "hals"),
        "package mu": _package(x, "mu"),
        "package torchnmf": _package(x, "torchnmf"),
        "scikit-learn cd": _sklearn(x, "cd"),
        "scikit-learn mu": _sklearn(x, "mu"),
    }


def _measure(x: torch.Tensor, fit: Fit, max_iter: int, tol: float) -> Point:
    """Best of two runs up to 64k rows (the machine is shared: one run can be 2x slow), one
    above."""
    times = []
    for _ in range(2 if x.shape[0] <= 64_000 else 1):
        start = time.perf_counter()
        a, d, iterations = fit(max_iter, tol)
        times.append(time.perf_counter() - start)
    error = relative_error(x, a.to(x.device), d.to(x.device))
    return Point(iterations, min(times), error)


def curves(x: torch.Tensor, label: str) -> list[Curve]:
    """Every planned solver's checkpoints and default fit on ``x``, printed as they come."""
    fits = _fits(x)
    out = []
    for solver, (checkpoints, default) in _plan(x.shape[0]).items():
        fit = fits[solver]
        if fit is None:
            continue
        fit(1, 0.0)  # warm-up: first calls, allocator, caches
        points = []
        for count in checkpoints:
            point = _measure(x, fit, count, 0.0)
            points.append(point)
            print(
                f"  {label} {solver:18s} {count:4d} it {point.seconds:8.3f} s "
                f"err {point.error:.6f}",
                flush=True,
            )
        stop = _measure(x, fit, 200, 1e-4) if default else None
        if stop is not None:
            print(
                f"  {label} {solver:18s} default {stop.iterations} it {stop.seconds:.3f} s "
                f"err {stop.error:.6f}",
                flush=True,
            )
        out.append(Curve(solver, tuple(points), stop))
    return out


def time_to(curve: Curve, target: float) -> Point | None:
    """The first checkpoint of ``curve`` at or below ``target``."""
    return next((p for p in curve.points if p.error <= target), None)


def _table(label: str, rows: int, found: list[Curve]) -> list[str]:
    best = min(p.error for c in found for p in (*c.points, *([c.default] if c.default else [])))
    target = best * (1 + CLOSE)
    lines = [
        f"### {label}, {rows:,} rows",
        "",
        f"Best error {best:.6f}; target (within {CLOSE:g} relative) {target:.6f}.",
        "",
        "| solver | error (seconds) at iterations | time to target | default fit "
        "(tol 1e-4): it, s, error | sklearn's best time to the default fit's error |",
        "|---|---|---|---|---|",
    ]
    sklearn = [c for c in found if c.solver.startswith("scikit-learn")]
    for curve in found:
        cells = ", ".join(f"{p.iterations}: {p.error:.5f} ({p.seconds:.2f})" for p in curve.points)
        hit = time_to(curve, target)
        reach = f"{hit.seconds:.3f} s ({hit.iterations} it)" if hit else "not reached"
        if curve.default:
            stop = curve.default
            default = f"{stop.iterations}, {stop.seconds:.3f}, {stop.error:.6f}"
            rivals = [p for p in (time_to(c, stop.error) for c in sklearn) if p is not None]
            rival = (
                f"{min(p.seconds for p in rivals):.3f} s" if rivals else "not reached by sklearn"
            )
        else:
            default, rival = "skipped", ""
        lines.append(f"| {curve.solver} | {cells} | {reach} | {default} | {rival} |")
    return [*lines, ""]


def _uniform_agent(agent: object) -> object:
    return permute_parameters(agent, range(len(LAYERS)), PERMUTATION_SEED)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16000,64000,1280000,6400000")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    device = torch.device("cpu")
    workdir = Path("/tmp/nmf_curves")
    workdir.mkdir(exist_ok=True)
    source = prepare_agent(CHECKPOINT, device, workdir)
    kinds = {
        "nearly one-hot (the agent's posteriors)": posterior_rows(source.agent, device),
        "nearly uniform (every posterior layer permuted, seed 12345)": posterior_rows(
            _uniform_agent(source.agent),  # type: ignore[arg-type]
            device,
        ),
    }
    header = [
        "# NMF by time to accuracy",
        "",
        f"Machine: {describe_here(1)}; NumPy BLAS held to 1 thread.",
        f"Agent: {source.description.kind} {source.description.path or ''} "
        f"(sha256 {source.description.sha256_16}).",
        "",
        __doc__.split("\n\n", 1)[1].rsplit("\n\nRun:", 1)[0],
        "",
        "Cells: `iterations: relative error (seconds)`, one run per cell, the fit timed whole "
        "(package: `fit_nmf` with init, fit, normalisation; scikit-learn: init and fit). "
        "16k rows are the first 16,000 rows of the 64k matrix; bigger ones are jittered copies "
        "(`nmf_data.scaled_rows`). Best of 2 runs up to 64k rows, 1 run above, after a 1-iteration "
        "warm-up. Cut for the one-core budget: torchnmf (the same iterates as mu, tested to "
        "1e-5) to 50 iterations at 64k rows, 10 at 1.28M, none at 6.4M; at 1.28M mu to 50 "
        "iterations, scikit-learn mu to 10 and no default fit of either torchnmf or scikit-learn "
        "mu; at 6.4M mu to 20, scikit-learn cd to 20 and neither's default fit, no scikit-learn "
        "mu.",
        "",
    ]
    body: list[str] = []
    with blas_threads(1):
        for rows in (int(s) for s in args.sizes.split(",")):
            for label, base in kinds.items():
                if rows <= base.shape[0]:
                    x = base[:rows].contiguous()
                else:
                    x = scaled_rows(base, math.ceil(rows / base.shape[0]))[:rows].contiguous()
                body += _table(label, rows, curves(x, f"{rows:>9,} {label[:14]}"))
                args.out.write_text("\n".join(header + body) + "\n")
                del x


if __name__ == "__main__":
    main()
