"""Suite 2, NMF of ``[N, 20]`` posterior rows: the package's solvers against the others.

Rank 10, 200 iterations, tol 0, one shared NNDSVDa init: the package's ``fit_nmf`` with
``solver="mu"``, ``solver="torchnmf"`` and ``solver="hals"``, a column-major MU prototype (not
package code: what a layout change would buy) and scikit-learn's ``mu`` and ``cd`` (skipped when
it is absent); time, relative error and the memory and compute floors of this machine.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np
import torch

from pytest_dreamer_audit.analysis.factorize import NMFConfig, fit_nmf, nndsvda_init

from .codec import OMIT_NONE
from .machine import Bandwidth, GemmRate, copy_bandwidth, gemm_rate
from .nmf_data import (
    CLASSES,
    NMF_ITERATIONS,
    RANK,
    NMFFloor,
    nmf_floor,
    relative_error,
    scaled_rows,
)
from .timing import Clock, Timing

T = TypeVar("T")
SKLEARN_ABSENT = (
    "scikit-learn is not installed: its solvers were skipped "
    "(pip install -r benchmarks/requirements.txt)"
)


@dataclass(frozen=True, kw_only=True)
class SolverResult:
    """One solver on one matrix (the field order is the results file's)."""

    solver: str
    iterations: int
    time: Timing
    best_s: float
    s_per_iteration: float
    """Per iteration: the package's mu may stop early (loss no longer decreasing)."""
    relative_error: float
    device: str | None = field(default=None, metadata=OMIT_NONE)
    """Where it ran (torch solvers only; scikit-learn runs on the CPU)."""
    blas: str | None = field(default=None, metadata=OMIT_NONE)
    """How NumPy's BLAS threads were held (scikit-learn only)."""
    includes: str
    """What the timed region covers."""
    scaled_from_iterations: int | None = field(default=None, metadata=OMIT_NONE)
    """A capped scikit-learn fit: the iterations actually run; the time is scaled from them."""
    measured_s: float | None = field(default=None, metadata=OMIT_NONE)
    note: str | None = field(default=None, metadata=OMIT_NONE)
    vs_package_mu: float | None = None
    """Seconds per iteration over the package mu's on the same matrix."""
    over_memory_floor_fused: float | None = None


@dataclass(frozen=True)
class NMFCase:
    """Every solver on one matrix size."""

    rows: int
    columns: int
    rank: int
    iterations: int
    data: str
    timed_runs: int
    warmup_runs: int
    init: Timing
    """``nndsvda_init`` alone."""
    solvers: tuple[SolverResult, ...]
    """The package's mu first."""
    floor: NMFFloor
    input_mib: float


@dataclass(frozen=True)
class NMFSuite:
    bandwidth: Bandwidth
    gemm: GemmRate
    cases: tuple[NMFCase, ...]
    notes: tuple[str, ...]
    same_init: str


@dataclass(frozen=True)
class _Case:
    """How one matrix is timed: one run without warm-up for the big ones."""

    x: torch.Tensor
    clock: Clock
    runs: int
    warmup: int

    def time(self, work: Callable[[], T]) -> tuple[Timing, T]:
        return self.clock.best_of(self.runs, work, warmup=self.warmup)

    def result(
        self, name: str, timing: Timing, a: Any, d: Any, iterations: int, **labels: Any
    ) -> SolverResult:
        """The result of a fit ``X ~ A D`` (tensors or arrays); printed as it comes."""
        a = torch.as_tensor(a, device=self.x.device)
        d = torch.as_tensor(d, device=self.x.device)
        entry = SolverResult(
            solver=name,
            iterations=iterations,
            time=timing,
            best_s=timing.best_s,
            s_per_iteration=timing.best_s / max(iterations, 1),
            relative_error=relative_error(self.x, a, d),
            **labels,
        )
        print(
            f"  NMF {self.x.shape[0]:>9,} rows {name:36s} {timing.best_s:8.3f} s  "
            f"{iterations:3d} it  rel. error {entry.relative_error:.5f}",
            flush=True,
        )
        return entry


def mu_column_major(
    x: torch.Tensor, a: torch.Tensor, d: torch.Tensor, iterations: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prototype, not package code: ``_fit_mu``'s updates with X and A stored transposed.

    The same Lee & Seung updates in the same order (prototypes, then activations), but with
    ``X^T [M, N]`` and ``A^T [r, N]`` contiguous, so that every big product has the long axis
    last (4x faster skinny GEMMs on a CPU) and the activation update runs in place. No loss
    checks (the benchmark runs a fixed number of iterations anyway).

    Shape:
        x ``[N, M]``, a ``[N, r]``, d ``[r, M]``; returns A ``[N, r]`` and D ``[r, M]``.
    """
    eps = 1e-12
    xt = x.T.contiguous()
    at = a.T.contiguous()
    d = d.clone()
    for _ in range(iterations):
        d.mul_((at @ xt.T) / ((at @ at.T) @ d).clamp_(min=eps))
        numerator = d @ xt
        at.mul_(numerator.div_(((d @ d.T) @ at).clamp_(min=eps)))
    return at.T, d


def _package_and_prototype(case: _Case) -> list[SolverResult]:
    results = []
    for solver in ("mu", "torchnmf", "hals"):  # mu first: the others are compared with it
        config = NMFConfig(rank=RANK, solver=solver, max_iter=NMF_ITERATIONS, tol=0.0)
        timing, fit = case.time(partial(fit_nmf, case.x, config))
        results.append(
            case.result(
                f'package fit_nmf solver="{solver}"',
                timing,
                fit.activations,
                fit.prototypes,
                fit.iterations,
                device=str(case.x.device),
                includes="checks, NNDSVDa init, fit, normalisation, error",
            )
        )

    def prototype() -> tuple[torch.Tensor, torch.Tensor]:
        a, d = nndsvda_init(case.x, RANK)
        return mu_column_major(case.x, a, d, NMF_ITERATIONS)

    timing, (a, d) = case.time(prototype)
    results.append(
        case.result(
            "prototype: mu, column-major",
            timing,
            a,
            d,
            NMF_ITERATIONS,
            device=str(case.x.device),
            includes="NNDSVDa init, fit (not package code)",
        )
    )
    return results


def sklearn_nmf_class() -> Any:
    """scikit-learn's ``NMF``, or None when scikit-learn is not installed."""
    try:
        from sklearn.decomposition import NMF
    except ImportError:
        return None
    return NMF


@contextlib.contextmanager
def blas_threads(threads: int) -> Iterator[str]:
    """Limit NumPy's BLAS (scikit-learn's products) to ``threads`` when threadpoolctl exists."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield "threadpoolctl absent: NumPy BLAS threads not limited"
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield f"NumPy BLAS limited to {threads} thread(s)"


def bench_sklearn(
    nmf_class: Any,
    solver: str,
    case: _Case,
    x_host: np.ndarray,
    threads: int,
    big: bool,
    budget_s: float,
) -> SolverResult:
    """Time scikit-learn (CPU) from the same init; cap big runs that would exceed the budget.

    A big fit is first run for a tenth of the iterations; when ten times that exceeds
    ``budget_s`` seconds, the result is that short fit with its time scaled, labelled so.
    """

    def fit(iterations: int) -> tuple[np.ndarray, np.ndarray, int]:
        a, d = nndsvda_init(case.x, RANK)
        model = nmf_class(
            n_components=RANK,
            init="custom",
            solver=solver,
            beta_loss="frobenius",
            tol=0.0,
            max_iter=iterations,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the iteration cap is the point
            w = model.fit_transform(x_host, W=a.cpu().numpy(), H=d.cpu().numpy())
        return w, model.components_, int(model.n_iter_)

    with blas_threads(threads) as limit:
        name = f"scikit-learn solver='{solver}' (CPU)"
        if not big:
            timing, value = case.time(lambda: fit(NMF_ITERATIONS))
            return case.result(name, timing, *value, blas=limit, includes="NNDSVDa init, fit")
        probe_iterations = NMF_ITERATIONS // 10
        probe, value = case.clock.best_of(1, lambda: fit(probe_iterations), warmup=0)
        estimate = probe.best_s * NMF_ITERATIONS / probe_iterations
        if estimate <= budget_s:
            timing, value = case.clock.best_of(1, lambda: fit(NMF_ITERATIONS), warmup=0)
            return case.result(name, timing, *value, blas=limit, includes="NNDSVDa init, fit")
        return case.result(
            f"{name}, {probe_iterations} it x {NMF_ITERATIONS // probe_iterations} (scaled)",
            Timing(estimate, (estimate,), None),
            *value,
            blas=limit,
            includes="NNDSVDa init, fit",
            scaled_from_iterations=probe_iterations,
            measured_s=probe.best_s,
            note=f"capped: {NMF_ITERATIONS} iterations would take ~{estimate:.0f} s "
            f"(> budget {budget_s:.0f} s); time scaled from {probe_iterations} iterations, "
            f"relative error after {probe_iterations} iterations",
        )


def bench_nmf(
    base: torch.Tensor,
    clock: Clock,
    sizes: list[int],
    repeats: int,
    threads: int,
    sklearn_budget_s: float,
) -> NMFSuite:
    """Every solver on each size of ``sizes`` rows (``base`` itself, or jittered copies of it).

    Shape:
        base ``[N, CLASSES]``; every size a multiple of N.
    """
    bandwidth = copy_bandwidth(clock, 512 if clock.device.type == "cpu" else 2048)
    flop_rate = gemm_rate(clock, 2048 if clock.device.type == "cpu" else 8192)
    print(
        f"  copy bandwidth {bandwidth.bytes_per_s / 1e9:.1f} GB/s (read + write), "
        f"sgemm {flop_rate.flop_per_s / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    nmf_class = sklearn_nmf_class()
    notes = () if nmf_class is not None else (SKLEARN_ABSENT,)
    cases = []
    for rows in sizes:
        x = base if rows == base.shape[0] else scaled_rows(base, rows // base.shape[0])
        big = rows > base.shape[0]
        case = _Case(x, clock, runs=1 if big else repeats, warmup=0 if big else 1)
        init, _ = case.time(partial(nndsvda_init, x, RANK))
        results = _package_and_prototype(case)
        if nmf_class is not None:
            x_host = x.cpu().numpy()
            for solver in ("mu", "cd"):
                results.append(
                    bench_sklearn(nmf_class, solver, case, x_host, threads, big, sklearn_budget_s)
                )
        floor = nmf_floor(rows, NMF_ITERATIONS, bandwidth.bytes_per_s, flop_rate.flop_per_s)
        mu = results[0].s_per_iteration
        solvers = tuple(
            replace(
                entry,
                vs_package_mu=entry.s_per_iteration / mu,
                over_memory_floor_fused=entry.best_s / floor.memory_floor_fused_s,
            )
            for entry in results
        )
        cases.append(
            NMFCase(
                rows=rows,
                columns=CLASSES,
                rank=RANK,
                iterations=NMF_ITERATIONS,
                data="posteriors of a 64 x 50 rollout"
                if not big
                else f"{rows // base.shape[0]} jittered copies of the 64k posterior rows",
                timed_runs=case.runs,
                warmup_runs=case.warmup,
                init=init,
                solvers=solvers,
                floor=floor,
                input_mib=rows * CLASSES * 4 / 2**20,
            )
        )
        del x, case
    return NMFSuite(
        bandwidth=bandwidth,
        gemm=flop_rate,
        cases=tuple(cases),
        notes=notes,
        same_init="nndsvda_init(X, 10) for every solver",
    )
