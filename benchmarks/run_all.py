"""Every benchmark of the package in one run: rollouts, NMF, rendering, end to end.

Run: ``python benchmarks/run_all.py [--quick] [--device cpu|cuda] [--threads N]``.
Writes ``benchmarks/results/<machine>.json`` and ``<machine>.md`` and prints the markdown table.
``--profile`` instead writes cProfile summaries of the same work to
``benchmarks/results/<machine>-profile.txt`` (no timings).

Every figure of one run comes from the same process on the same machine, so ratios compare like
with like. Each is the best of ``--repeats`` runs after one warm-up run (the 6.4M-row NMF cases:
one run, warmed up by the 64k-row case of the same code). On CUDA every timed region ends with
``torch.cuda.synchronize()``. The sections (details in ``benchmarks/README.md``):

1. rollouts: the notebook's loop (one episode at a time, one observation per forward pass) vs
   the batched ``run_rollouts``, same agent, same seeds, B x 50 steps; and the games alone.
2. NMF of ``[N, 20]`` posterior rows, rank 10, 200 iterations, one shared NNDSVDa init: the
   package's ``fit_nmf`` with ``solver="mu"`` and ``solver="torchnmf"``, scikit-learn's ``mu``
   and ``cd`` (skipped when scikit-learn is absent), and a column-major MU prototype (not package
   code: what a layout change would buy); time, relative error and the memory-bandwidth floor.
3. rendering one 50-step rollout: the notebook's 4-axes-per-step figure vs ``render_rollout``.
4. end to end: load the checkpoint, roll out, ``explain`` (NMF, scores, stability refits,
   sanity check, deletion), render 4 rollout grids and the factor gallery.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import math
import os
import platform
import pstats
import re
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
import torchnmf
from render_speed import notebook_rollout
from rollout_throughput import games_only, one_at_a_time
from torch.profiler import ProfilerActivity

from pytest_dreamer_audit import __version__ as package_version
from pytest_dreamer_audit.analysis.factorize import (
    NMFConfig,
    fit_nmf,
    flatten_posteriors,
    nndsvda_init,
)
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.model.agent import AgentMetadata, DreamerAgent, build_agent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.model.devices import resolve_device
from pytest_dreamer_audit.model.networks import ModelSizes
from pytest_dreamer_audit.report.render import render_factor_gallery, render_rollout
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.rollout.rollouts import run_rollouts

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_CHECKPOINT = HERE.parent / "examples" / "checkpoints" / "freeway_pomdp.pth"
GAME, STEPS, RANK, CLASSES, NMF_ITERATIONS = "freeway", 50, 10, 20, 200
BASE_ROWS = 64_000  # 64 episodes x 50 steps x 20 categoricals: one pooled NMF matrix
RENDER_EPISODES = 4  # rollout grids per audit (the CLI's and the plugin's default)
GOALS = {  # measured on an H100 by others; see README.md
    "rollouts_speedup_64": 100.0,
    "nmf_6400k_s": 0.2,
    "render_speedup": 20.0,
    "end_to_end_64_s": 2.0,
}


# --------------------------------------------------------------------------------------------
# timing


@dataclass
class Clock:
    """Wall-clock timing on one device; CUDA work is synchronised before each reading."""

    device: torch.device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def once(self, work: Callable[[], Any]) -> tuple[float, Any]:
        self.sync()
        start = time.perf_counter()
        value = work()
        self.sync()
        return time.perf_counter() - start, value

    def best_of(self, repeats: int, work: Callable[[], Any], warmup: int = 1) -> Timing:
        """Minimum of ``repeats`` timed runs after ``warmup`` untimed ones."""
        first = None
        for _ in range(warmup):
            elapsed, _ = self.once(work)
            first = elapsed if first is None else first
        times, value = [], None
        for _ in range(max(1, repeats)):
            elapsed, value = self.once(work)
            times.append(elapsed)
        return Timing(min(times), times, first, value)


@dataclass
class Timing:
    best: float
    times: list[float]
    warmup: float | None
    value: Any = field(default=None, repr=False)

    def json(self) -> dict[str, Any]:
        return {"best_s": self.best, "times_s": self.times, "warmup_s": self.warmup}


# --------------------------------------------------------------------------------------------
# the machine


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key and key not in info:
                info[key] = value.strip()
    return info


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def describe_machine(device: torch.device) -> dict[str, Any]:
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    simd = [f for f in ("avx512f", "avx2", "fma", "neon", "asimd") if f in flags]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "cpu_simd": simd,
        "cpu_cache": cpu.get("cache size"),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "load_average_at_start": list(os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "torchnmf": getattr(torchnmf, "__version__", None),
        "scikit_learn": _version("sklearn"),
        "pytest_dreamer_audit": package_version,
        "device": str(device),
        "gpu": gpu,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
    }


def machine_slug(machine: dict[str, Any], threads: int) -> str:
    if machine["gpu"]:
        text = f"{machine['gpu']}-cuda"
    else:
        text = f"{machine['cpu_model']}-{machine['usable_cpus']}cpu-{threads}thread-cpu"
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def copy_bandwidth(clock: Clock, mib: int, repeats: int = 5) -> dict[str, float]:
    """Bytes read + written per second by one large ``Tensor.copy_`` (the streaming ceiling)."""
    src = torch.ones(mib * 2**20 // 4, device=clock.device)
    dst = torch.empty_like(src)
    timing = clock.best_of(repeats, lambda: dst.copy_(src))
    moved = 2 * src.numel() * 4
    return {"buffer_mib": mib, "best_s": timing.best, "bytes_per_s": moved / timing.best}


def gemm_rate(clock: Clock, side: int, repeats: int = 3) -> dict[str, float]:
    """float32 FLOP/s of one square matmul (the compute ceiling)."""
    a = torch.rand(side, side, device=clock.device)
    b = torch.rand(side, side, device=clock.device)
    timing = clock.best_of(repeats, lambda: a @ b)
    return {"side": side, "best_s": timing.best, "flop_per_s": 2 * side**3 / timing.best}


# --------------------------------------------------------------------------------------------
# the agent


@dataclass
class AgentSource:
    agent: DreamerAgent
    path: Path | None  # a private copy of the checkpoint, or None for random weights
    description: dict[str, Any]


def prepare_agent(checkpoint: Path | None, device: torch.device, workdir: Path) -> AgentSource:
    """Copy the checkpoint (training may rewrite the original) and load the copy."""
    if checkpoint is not None and checkpoint.is_file():
        copy = workdir / checkpoint.name
        shutil.copyfile(checkpoint, copy)
        try:
            agent = load_checkpoint(copy, device=device)
        except Exception as error:  # a file caught mid-rewrite: fall back, say so
            note = f"could not load {checkpoint} ({type(error).__name__}: {error})"
        else:
            digest = hashlib.sha256(copy.read_bytes()).hexdigest()[:16]
            training = agent.metadata.training or {}
            return AgentSource(
                agent,
                copy,
                {
                    "kind": "checkpoint",
                    "path": str(checkpoint),
                    "sha256_16": digest,
                    "env_steps": training.get("env_steps"),
                    "recent_mean_return": training.get("recent_mean_return"),
                    "sizes": vars(agent.sizes),
                },
            )
    else:
        note = f"no checkpoint at {checkpoint}"
    sizes = ModelSizes(channels=2, actions=3)  # the reference sizes, Freeway POMDP
    agent = build_agent(sizes, seed=0, metadata=AgentMetadata(GAME, True)).to(device)
    return AgentSource(
        agent,
        None,
        {"kind": "reference sizes, random weights (seed 0)", "note": note, "sizes": vars(sizes)},
    )


# --------------------------------------------------------------------------------------------
# 1. rollouts


def torch_ops_per_step(work: Callable[[], Any], steps: int) -> float:
    """Top-level torch operators that ``work`` dispatches per step (profiler count).

    On a GPU each is at least one kernel launch, and at a few microseconds per launch the count
    is what a small-batch rollout step costs there; it does not depend on the machine.
    """
    with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
        work()
    top_level = [
        event
        for event in prof.events()
        if event.name.startswith("aten::")
        and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
    ]
    return len(top_level) / steps


def bench_rollouts(
    agent: DreamerAgent, clock: Clock, batches: list[int], repeats: int, sequential_repeats: int
) -> dict[str, Any]:
    rows = []
    for episodes in batches:
        floor = clock.best_of(repeats, lambda e=episodes: games_only(e, STEPS))
        batched = clock.best_of(
            repeats,
            lambda e=episodes: run_rollouts(agent, GAME, pomdp=True, episodes=e, steps=STEPS),
        )
        notebook = clock.best_of(
            sequential_repeats, lambda e=episodes: one_at_a_time(agent, e, STEPS)
        )
        rows.append(
            {
                "episodes": episodes,
                "steps": STEPS,
                "games_only": floor.json(),
                "batched": batched.json(),
                "notebook_loop": notebook.json(),
                "speedup": notebook.best / batched.best,
                "batched_over_games_only": batched.best / floor.best,
                "batched_steps_per_s": episodes * STEPS / batched.best,
                "notebook_steps_per_s": episodes * STEPS / notebook.best,
                "batched_torch_ops_per_step": torch_ops_per_step(
                    lambda e=episodes: run_rollouts(
                        agent, GAME, pomdp=True, episodes=e, steps=STEPS
                    ),
                    STEPS,
                ),
            }
        )
        print(
            f"  rollouts {episodes} x {STEPS}: batched {batched.best:.3f} s, notebook loop "
            f"{notebook.best:.3f} s, games only {floor.best:.3f} s",
            flush=True,
        )
    # Same agent, same seeds: episode b of the batch is the notebook's episode b.
    check = min(16, min(batches))
    batch = run_rollouts(agent, GAME, pomdp=True, episodes=check, steps=STEPS)
    alone = [
        run_rollouts(agent, GAME, pomdp=True, episodes=1, steps=STEPS, seed=b) for b in range(check)
    ]
    together = torch.cat([t.actions for t in alone], dim=1)
    same = float((together == batch.actions).float().mean())
    return {"rows": rows, "same_actions_fraction": same, "checked_episodes": check}


# --------------------------------------------------------------------------------------------
# 2. NMF


def posterior_rows(agent: DreamerAgent, device: torch.device) -> torch.Tensor:
    """The pooled NMF matrix of a 64 x 50 rollout: 64,000 rows of 20 class probabilities."""
    trajectory = run_rollouts(agent, GAME, pomdp=True, episodes=64, steps=STEPS)
    rows = flatten_posteriors(trajectory.posterior_probs, trajectory.valid, "pooled").matrix
    if rows.shape[0] != BASE_ROWS:  # episodes that ended early: tile to the nominal size
        rows = rows.repeat(math.ceil(BASE_ROWS / rows.shape[0]), 1)[:BASE_ROWS]
    return rows.to(device).contiguous()


def scaled_rows(base: torch.Tensor, factor: int, seed: int = 0) -> torch.Tensor:
    """``factor`` jittered copies of ``base`` (each row renormalised to sum to 1)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    out = base.cpu().repeat(factor, 1)
    out.mul_(torch.randn(out.shape, generator=generator).mul_(0.1).exp_())
    out.div_(out.sum(dim=1, keepdim=True))
    return out.to(base.device)


def relative_error(x: torch.Tensor, a: torch.Tensor, d: torch.Tensor) -> float:
    """``||X - A D||_F / ||X||_F``, accumulated in float64, in row chunks."""
    error = total = 0.0
    for start in range(0, x.shape[0], 1 << 20):
        xs, as_ = x[start : start + (1 << 20)], a[start : start + (1 << 20)]
        residual = xs - as_ @ d
        error += float((residual.double() ** 2).sum())
        total += float((xs.double() ** 2).sum())
    return math.sqrt(error / total)


def mu_column_major(
    x: torch.Tensor, a: torch.Tensor, d: torch.Tensor, iterations: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prototype, not package code: ``_fit_mu``'s updates with X and A stored transposed.

    The same Lee & Seung updates in the same order (prototypes, then activations), but with
    ``X^T [M, N]`` and ``A^T [r, N]`` contiguous, so that every big product has the long axis
    last (4x faster skinny GEMMs on a CPU) and the activation update runs in place. No loss
    checks (the benchmark runs a fixed number of iterations anyway).
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


def nmf_floor(
    rows: int, iterations: int, bandwidth: float, flop_rate: float
) -> dict[str, float | str]:
    """Lower bounds of a 200-iteration MU fit of ``[rows, 20]`` at rank 10 (float32)."""
    m, r = CLASSES, RANK
    fused = 4 * rows * (m + 2 * r)  # read X once, read A once, write A once
    as_written = 4 * rows * (2 * m + 13 * r)  # package _fit_mu: X twice, 13 A-sized passes
    flops = 2 * rows * r * (2 * m + 2 * r)  # A^T X, X D^T, A^T A, A (D D^T)
    return {
        "bytes_per_iteration_fused": fused,
        "bytes_per_iteration_as_written": as_written,
        "flop_per_iteration": flops,
        "memory_floor_fused_s": iterations * fused / bandwidth,
        "memory_floor_as_written_s": iterations * as_written / bandwidth,
        "compute_floor_s": iterations * flops / flop_rate,
        "formula": "fused: 4 B x N x (M + 2r); as written: 4 B x N x (2M + 13r); "
        "flop: 2 N r (2M + 2r); M = 20, r = 10",
    }


def _sklearn() -> Any:
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


@dataclass
class Recorder:
    """Collects one NMF case's results: time, iterations, relative error of ``A D``."""

    x: torch.Tensor
    results: list[dict[str, Any]]

    def __call__(
        self, name: str, timing: Timing, a: Any, d: Any, iterations: int, **extra: Any
    ) -> None:
        a = torch.as_tensor(a, device=self.x.device)
        d = torch.as_tensor(d, device=self.x.device)
        entry = {
            "solver": name,
            "iterations": iterations,
            "time": timing.json(),
            "best_s": timing.best,
            "s_per_iteration": timing.best / max(iterations, 1),
            "relative_error": relative_error(self.x, a, d),
            **extra,
        }
        self.results.append(entry)
        print(
            f"  NMF {self.x.shape[0]:>9,} rows {name:36s} {timing.best:8.3f} s  "
            f"{iterations:3d} it  rel. error {entry['relative_error']:.5f}",
            flush=True,
        )


def bench_nmf(
    base: torch.Tensor,
    clock: Clock,
    sizes: list[int],
    repeats: int,
    threads: int,
    sklearn_budget_s: float,
) -> dict[str, Any]:
    bandwidth = copy_bandwidth(clock, 512 if clock.device.type == "cpu" else 2048)
    flop_rate = gemm_rate(clock, 2048 if clock.device.type == "cpu" else 8192)
    print(
        f"  copy bandwidth {bandwidth['bytes_per_s'] / 1e9:.1f} GB/s (read + write), "
        f"sgemm {flop_rate['flop_per_s'] / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    sklearn_nmf = _sklearn()
    notes = []
    if sklearn_nmf is None:
        notes.append(
            "scikit-learn is not installed: its solvers were skipped "
            "(pip install -r benchmarks/requirements.txt)"
        )
    cases = []
    for rows in sizes:
        x = base if rows == base.shape[0] else scaled_rows(base, rows // base.shape[0])
        big = rows > base.shape[0]
        runs = 1 if big else repeats
        warmup = 0 if big else 1
        init = clock.best_of(runs, lambda x=x: nndsvda_init(x, RANK), warmup=warmup)
        results: list[dict[str, Any]] = []
        record = Recorder(x, results)
        for solver in ("mu", "torchnmf"):
            config = NMFConfig(rank=RANK, solver=solver, max_iter=NMF_ITERATIONS, tol=0.0)
            timing = clock.best_of(runs, lambda x=x, c=config: fit_nmf(x, c), warmup=warmup)
            fit = timing.value
            record(
                f'package fit_nmf solver="{solver}"',
                timing,
                fit.activations,
                fit.prototypes,
                fit.iterations,
                device=str(x.device),
                includes="checks, NNDSVDa init, fit, normalisation, error",
            )
        timing = clock.best_of(
            runs,
            lambda x=x: mu_column_major(x, *nndsvda_init(x, RANK), NMF_ITERATIONS),
            warmup=warmup,
        )
        record(
            "prototype: mu, column-major",
            timing,
            *timing.value,
            NMF_ITERATIONS,
            device=str(x.device),
            includes="NNDSVDa init, fit (not package code)",
        )
        if sklearn_nmf is not None:
            x_host = x.cpu().numpy()
            for solver in ("mu", "cd"):
                _bench_sklearn(
                    sklearn_nmf, solver, x_host, x, clock, runs, warmup, threads, big,
                    sklearn_budget_s, record,
                )  # fmt: skip
        floor = nmf_floor(rows, NMF_ITERATIONS, bandwidth["bytes_per_s"], flop_rate["flop_per_s"])
        mu = results[0]["s_per_iteration"]
        for entry in results:
            # per iteration: the package's mu may stop early (loss no longer decreasing)
            entry["vs_package_mu"] = entry["s_per_iteration"] / mu
            entry["over_memory_floor_fused"] = entry["best_s"] / floor["memory_floor_fused_s"]
        cases.append(
            {
                "rows": rows,
                "columns": CLASSES,
                "rank": RANK,
                "iterations": NMF_ITERATIONS,
                "data": "posteriors of a 64 x 50 rollout"
                if not big
                else f"{rows // base.shape[0]} jittered copies of the 64k posterior rows",
                "timed_runs": runs,
                "warmup_runs": warmup,
                "init": init.json(),
                "solvers": results,
                "floor": floor,
                "input_mib": rows * CLASSES * 4 / 2**20,
            }
        )
        del x
    return {
        "bandwidth": bandwidth,
        "gemm": flop_rate,
        "cases": cases,
        "notes": notes,
        "same_init": "nndsvda_init(X, 10) for every solver",
    }


def _bench_sklearn(
    nmf_class: Any,
    solver: str,
    x_host: np.ndarray,
    x: torch.Tensor,
    clock: Clock,
    runs: int,
    warmup: int,
    threads: int,
    big: bool,
    budget_s: float,
    record: Recorder,
) -> None:
    """Time scikit-learn (CPU) from the same init; cap big runs that would exceed the budget."""

    def fit(iterations: int) -> tuple[np.ndarray, np.ndarray, int]:
        a, d = nndsvda_init(x, RANK)
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
            timing = clock.best_of(runs, lambda: fit(NMF_ITERATIONS), warmup=warmup)
            record(name, timing, *timing.value, blas=limit, includes="NNDSVDa init, fit")
            return
        probe_iterations = NMF_ITERATIONS // 10
        probe = clock.best_of(1, lambda: fit(probe_iterations), warmup=0)
        estimate = probe.best * NMF_ITERATIONS / probe_iterations
        if estimate <= budget_s:
            timing = clock.best_of(1, lambda: fit(NMF_ITERATIONS), warmup=0)
            record(name, timing, *timing.value, blas=limit, includes="NNDSVDa init, fit")
            return
        scaled = Timing(estimate, [estimate], None)
        record(
            f"{name}, {probe_iterations} it x {NMF_ITERATIONS // probe_iterations} (scaled)",
            scaled,
            probe.value[0],
            probe.value[1],
            probe.value[2],
            blas=limit,
            includes="NNDSVDa init, fit",
            scaled_from_iterations=probe_iterations,
            measured_s=probe.best,
            note=f"capped: {NMF_ITERATIONS} iterations would take ~{estimate:.0f} s "
            f"(> budget {budget_s:.0f} s); time scaled from {probe_iterations} iterations, "
            f"relative error after {probe_iterations} iterations",
        )


# --------------------------------------------------------------------------------------------
# 3. rendering and 4. end to end


class Stages:
    """``explain``'s progress callback: wall time of each stage (synchronised on CUDA)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.times: dict[str, float] = {}
        self.label: str | None = None
        self.start = 0.0

    def __call__(self, label: str) -> None:
        self.stop()
        self.label = "stability refits" if label.startswith("stability") else label
        self.start = time.perf_counter()

    def stop(self) -> None:
        self.clock.sync()
        if self.label is not None:
            elapsed = time.perf_counter() - self.start
            self.times[self.label] = self.times.get(self.label, 0.0) + elapsed
        self.label = None


def end_to_end(source: AgentSource, clock: Clock, episodes: int) -> dict[str, float]:
    """One audit: load, roll out, explain (with the agent), render; seconds per stage."""
    stages: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        clock.sync()
        now = time.perf_counter()
        stages[name] = now - start
        start = now

    if source.path is not None:
        agent = load_checkpoint(source.path, device=clock.device)
    else:
        agent = source.agent
    lap("load")
    trajectory = run_rollouts(agent, GAME, pomdp=True, episodes=episodes, steps=STEPS)
    lap("rollouts")
    progress = Stages(clock)
    explanation = explain(trajectory, ExplainConfig(), agent=agent, progress=progress)
    progress.stop()
    lap("explain")
    for name, seconds in progress.times.items():
        stages[f"explain: {name}"] = seconds
    for episode in range(min(RENDER_EPISODES, episodes)):
        render_rollout(explanation, episode)
    render_factor_gallery(explanation)
    lap("render")
    stages["total"] = sum(
        v for k, v in stages.items() if k in ("load", "rollouts", "explain", "render")
    )
    return stages


def bench_end_to_end(
    source: AgentSource, clock: Clock, batches: list[int], repeats: int
) -> list[dict[str, Any]]:
    rows = []
    for episodes in batches:
        end_to_end(source, clock, episodes)  # warm-up
        runs = [end_to_end(source, clock, episodes) for _ in range(max(1, repeats))]
        best = min(runs, key=lambda r: r["total"])
        rows.append(
            {
                "episodes": episodes,
                "steps": STEPS,
                "stages_s": best,
                "totals_s": [r["total"] for r in runs],
                "config": "ExplainConfig() defaults: rank 10, pooled, mu, 2 stability refits, "
                f"sanity and deletion; {RENDER_EPISODES} rollout grids + factor gallery",
            }
        )
        print(f"  end to end {episodes} x {STEPS}: {best['total']:.3f} s", flush=True)
    return rows


def bench_render(source: AgentSource, clock: Clock, repeats: int) -> dict[str, Any]:
    trajectory = run_rollouts(source.agent, GAME, pomdp=True, episodes=16, steps=STEPS)
    explanation = explain(trajectory, ExplainConfig(stability_refits=0))
    episode = int(np.argmax(explanation.valid.sum(axis=0)))
    cpu = Clock(torch.device("cpu"))  # rendering is NumPy + matplotlib
    ours = cpu.best_of(repeats, lambda: render_rollout(explanation, episode))
    notebook = cpu.best_of(repeats, lambda: notebook_rollout(explanation, episode))
    gallery = cpu.best_of(repeats, lambda: render_factor_gallery(explanation))
    print(
        f"  render: package {ours.best:.3f} s, notebook {notebook.best:.3f} s, "
        f"gallery {gallery.best:.3f} s",
        flush=True,
    )
    return {
        "steps": int(explanation.valid[:, episode].sum()),
        "categoricals_x_classes": list(explanation.posterior_probs.shape[2:]),
        "package_render_rollout": ours.json(),
        "notebook_figure": notebook.json(),
        "package_factor_gallery": gallery.json(),
        "speedup": notebook.best / ours.best,
        "package_png_bytes": len(ours.value),
        "notebook_png_bytes": len(notebook.value),
    }


# --------------------------------------------------------------------------------------------
# report


def _s(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _x(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1f}x"


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    device = m["gpu"] or "CPU only"
    lines = [
        f"### {result['name']}",
        "",
        f"- CPU: {m['cpu_model']} (family/model {m['cpu_family_model']}, "
        f"{', '.join(m['cpu_simd']) or 'no SIMD flags read'}), {m['usable_cpus']} usable of "
        f"{m['logical_cpus']} logical CPUs, {m['memory_gib']} GiB; device: {device} "
        f"({m['device']})",
        f"- torch {m['torch']} ({m['torch_blas']}), {m['torch_threads']} intra-op thread(s); "
        f"numpy {m['numpy']}, matplotlib {m['matplotlib']}, torchnmf {m['torchnmf']}, "
        f"scikit-learn {m['scikit_learn'] or 'absent'}; load average at start "
        f"{', '.join(f'{v:.2f}' for v in m['load_average_at_start'])}",
        f"- agent: {result['agent']['kind']}"
        + (
            f" (env steps {result['agent'].get('env_steps')})"
            if result["agent"].get("env_steps")
            else ""
        ),
        f"- {result['mode']}; best of {result['args']['repeats']} after 1 warm-up unless said "
        f"otherwise; run took {result['duration_s'] / 60:.1f} min",
    ]
    lines += [f"- note: {n}" for n in result["notes"]]
    if "rollouts" in result:
        r = result["rollouts"]
        lines += [
            "",
            f"**Rollouts** (B episodes x {STEPS} steps; same seeds; actions identical to the "
            f"notebook loop's on {r['same_actions_fraction']:.1%} of steps, "
            f"{r['checked_episodes']} episodes checked)",
            "",
            "| B x L | notebook loop (s) | batched (s) | speed-up | games only (s) "
            "| batched / games only | batched steps/s | torch ops / step |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in r["rows"]:
            ops = row.get("batched_torch_ops_per_step")
            lines.append(
                f"| {row['episodes']} x {row['steps']} | {_s(row['notebook_loop']['best_s'])} "
                f"| {_s(row['batched']['best_s'])} | {_x(row['speedup'])} "
                f"| {_s(row['games_only']['best_s'])} | {_x(row['batched_over_games_only'])} "
                f"| {row['batched_steps_per_s']:.0f} | {'-' if ops is None else f'{ops:.0f}'} |"
            )
    if "nmf" in result:
        n = result["nmf"]
        bw, gemm = n["bandwidth"]["bytes_per_s"], n["gemm"]["flop_per_s"]
        lines += [
            "",
            f"**NMF** ([N, 20] posterior rows, rank 10, {NMF_ITERATIONS} iterations, tol 0, "
            f"same NNDSVDa init; copy bandwidth {bw / 1e9:.1f} GB/s read + write, "
            f"sgemm {gemm / 1e9:.0f} GFLOP/s, both measured here)",
            "",
            "| N rows | solver | iterations | time (s) | ms / it | rel. error "
            "| ms / it vs package mu | memory floor fused / as written (s) | compute floor (s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for case in n["cases"]:
            f = case["floor"]
            floors = f"{_s(f['memory_floor_fused_s'])} / {_s(f['memory_floor_as_written_s'])}"
            runs = "1 run" if case["timed_runs"] == 1 else f"best of {case['timed_runs']}"
            for entry in case["solvers"]:
                lines.append(
                    f"| {case['rows']:,} ({runs}) | {entry['solver']} | {entry['iterations']} "
                    f"| {_s(entry['best_s'])} | {1e3 * entry['s_per_iteration']:.2f} "
                    f"| {entry['relative_error']:.5f} | {_x(entry['vs_package_mu'])} "
                    f"| {floors} | {_s(f['compute_floor_s'])} |"
                )
        for case in n["cases"]:
            lines += [
                f"- {case['rows']:,} rows: {e['solver']}: {e['note']}"
                for e in case["solvers"]
                if e.get("note")
            ]
        lines += [f"- {note}" for note in n["notes"]]
    if "render" in result:
        r = result["render"]
        lines += [
            "",
            f"**Rendering** one {r['steps']}-step rollout to PNG bytes (CPU, matplotlib Agg)",
            "",
            "| notebook figure (s) | package render_rollout (s) | speed-up "
            "| factor gallery (s) | PNG bytes notebook / package |",
            "|---|---|---|---|---|",
            f"| {_s(r['notebook_figure']['best_s'])} | {_s(r['package_render_rollout']['best_s'])} "
            f"| {_x(r['speedup'])} | {_s(r['package_factor_gallery']['best_s'])} "
            f"| {r['notebook_png_bytes']:,} / {r['package_png_bytes']:,} |",
        ]
    if "end_to_end" in result:
        rows = result["end_to_end"]
        keys = [k for k in rows[0]["stages_s"] if k != "total"]
        lines += [
            "",
            f"**End to end** (load, rollouts, explain, render; {rows[0]['config']}; seconds)",
            "",
            "| B x L | " + " | ".join(keys) + " | total |",
            "|---|" + "---|" * (len(keys) + 1),
        ]
        for row in rows:
            cells = " | ".join(_s(row["stages_s"].get(k)) for k in keys)
            total = _s(row["stages_s"]["total"])
            lines.append(f"| {row['episodes']} x {row['steps']} | {cells} | **{total}** |")
    if result.get("goals"):
        lines += [
            "",
            "**Goals** (set on an H100; this run's device above)",
            "",
            "| goal | measured here | met here |",
            "|---|---|---|",
        ]
        lines += [f"| {g['goal']} | {g['measured']} | {g['met']} |" for g in result["goals"]]
    return "\n".join(lines) + "\n"


def goals(result: dict[str, Any]) -> list[dict[str, str]]:
    out = []

    def add(goal: str, measured: str, met: bool | None) -> None:
        out.append({"goal": goal, "measured": measured, "met": "-" if met is None else str(met)})

    for row in result.get("rollouts", {}).get("rows", []):
        if row["episodes"] == 64:
            add(
                "batched 64 x 50 rollouts >= 100x the notebook loop",
                _x(row["speedup"]),
                row["speedup"] >= GOALS["rollouts_speedup_64"],
            )
    for case in result.get("nmf", {}).get("cases", []):
        if case["rows"] == 100 * BASE_ROWS:
            mu = case["solvers"][0]
            add(
                "NMF 6.4M rows <= 0.2 s on GPU (package mu)",
                f"{_s(mu['best_s'])} s on {mu['device']}",
                mu["best_s"] <= GOALS["nmf_6400k_s"] if "cuda" in mu["device"] else None,
            )
    if "render" in result:
        speedup = result["render"]["speedup"]
        add("rendering >= 20x the notebook's", _x(speedup), speedup >= GOALS["render_speedup"])
    for row in result.get("end_to_end", []):
        if row["episodes"] == 64:
            total = row["stages_s"]["total"]
            on_gpu = result["machine"]["gpu"] is not None
            add(
                "end to end 64 x 50 < 2 s on GPU",
                f"{_s(total)} s on {result['machine']['device']}",
                total < GOALS["end_to_end_64_s"] if on_gpu else None,
            )
    return out


# --------------------------------------------------------------------------------------------
# profiles


def profile(source: AgentSource, clock: Clock, base: torch.Tensor) -> str:
    """cProfile of each slow piece, top functions by own time and by cumulative time."""
    trajectory = run_rollouts(source.agent, GAME, pomdp=True, episodes=16, steps=STEPS)
    explanation = explain(trajectory, ExplainConfig(stability_refits=0))
    work: list[tuple[str, Callable[[], Any]]] = [
        (
            "batched rollouts 64 x 50",
            lambda: run_rollouts(source.agent, GAME, pomdp=True, episodes=64, steps=STEPS),
        ),
        ("notebook loop 16 x 50", lambda: one_at_a_time(source.agent, 16, STEPS)),
        ("games only 64 x 50", lambda: games_only(64, STEPS)),
        (
            'fit_nmf solver="mu" 64k rows',
            lambda: fit_nmf(base, NMFConfig(solver="mu", tol=0.0)),
        ),
        (
            'fit_nmf solver="torchnmf" 64k rows',
            lambda: fit_nmf(base, NMFConfig(solver="torchnmf", tol=0.0)),
        ),
        ("render_rollout (package)", lambda: render_rollout(explanation, 0)),
        ("notebook figure", lambda: notebook_rollout(explanation, 0)),
        ("end to end 64 x 50", lambda: end_to_end(source, clock, 64)),
    ]
    out = io.StringIO()
    for name, job in work:
        job()  # warm-up
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.runcall(job)
        clock.sync()
        elapsed = time.perf_counter() - start
        out.write(f"\n{'=' * 100}\n{name}: {elapsed:.3f} s under cProfile\n{'=' * 100}\n")
        for order in ("tottime", "cumulative"):
            stats = pstats.Stats(profiler, stream=out)
            stats.strip_dirs().sort_stats(order).print_stats(18)
    return out.getvalue()


# --------------------------------------------------------------------------------------------


def main() -> None:
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
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("rollouts", "nmf", "render", "end_to_end"),
        default=("rollouts", "nmf", "render", "end_to_end"),
    )
    parser.add_argument("--note", action="append", default=[], help="a note for the report")
    parser.add_argument("--profile", action="store_true", help="write cProfile summaries only")
    parser.add_argument(
        "--table", type=Path, default=None, help="print the markdown of a results JSON and exit"
    )
    args = parser.parse_args()
    if args.table is not None:
        print(markdown(json.loads(args.table.read_text())), end="")
        return

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    clock = Clock(device)
    repeats = args.repeats or (1 if args.quick else 3)
    args.repeats = repeats
    machine = describe_machine(device)
    name = args.name or machine_slug(machine, args.threads)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "schema": 1,
        "name": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine,
        "notes": [
            f"torch intra-op threads and NumPy BLAS threads held to {args.threads} (--threads)",
            *args.note,
        ],
    }
    print(f"benchmarks on {name}: {machine['cpu_model']}, device {device}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dreamer-bench-") as workdir:
        source = prepare_agent(args.checkpoint, device, Path(workdir))
        result["agent"] = source.description
        if source.path is None:
            result["notes"].append(f"random reference-size agent: {source.description['note']}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        if args.profile:
            text = profile(source, clock, posterior_rows(source.agent, device))
            out = RESULTS / f"{name}-profile.txt"
            out.write_text(text)
            print(f"written: {out}")
            return
        if "rollouts" in args.only:
            batches = [16, 64] if args.quick else [16, 64, 256]
            result["rollouts"] = bench_rollouts(
                source.agent, clock, batches, repeats, 1 if args.quick else 2
            )
        if "nmf" in args.only:
            sizes = [BASE_ROWS, 10 * BASE_ROWS] if args.quick else [BASE_ROWS, 100 * BASE_ROWS]
            base = posterior_rows(source.agent, device)
            result["nmf"] = bench_nmf(
                base, clock, sizes, repeats, args.threads, args.sklearn_budget_s
            )
            del base
        if "render" in args.only:
            result["render"] = bench_render(source, clock, repeats)
        if "end_to_end" in args.only:
            result["end_to_end"] = bench_end_to_end(
                source, clock, [16] if args.quick else [16, 64], repeats
            )
    machine["load_average_at_end"] = list(os.getloadavg())
    result["duration_s"] = time.perf_counter() - started
    result["goals"] = goals(result)
    table = markdown(result)
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    print("\n" + table)
    print(f"written: {json_path} and {json_path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
