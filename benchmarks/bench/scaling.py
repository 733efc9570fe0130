"""How an audit grows with B x L: wall time and peak memory of each stage, one process per cell.

Each (B, L) cell runs in a fresh subprocess (``run_cell``), so no peak and no cache carries over
from a smaller cell. In it: an untimed warm-up audit of 2 x 5 (imports, gymnasium registration,
matplotlib's fonts), then ``run_rollouts`` (B x L, Freeway POMDP, seed 0), ``explain`` with the
agent and ``ExplainConfig()`` (stages split by its ``progress`` callback, as
``bench/end_to_end.py``), ``render_rollout`` of 4 episodes and ``render_factor_gallery``.

Memory: ``tracemalloc`` does not see torch's allocations, so the resident set is read from
``/proc/self/status``. Before each stage the kernel's high-water mark is reset
(``/proc/self/clear_refs`` <- 5), so a stage's *peak* is ``VmHWM`` at its end minus ``VmRSS`` at
its start: what the stage needed above what was already resident. *Held* is ``VmRSS`` after
minus before (what it leaves behind, e.g. the trajectory). Where ``clear_refs`` is refused, the
peak falls back to ``ru_maxrss`` deltas (then a stage below an earlier peak reads 0). glibc keeps
freed memory mapped at times, so held can exceed what Python still references.

The parent (``bench_scaling``) runs the cells from the smallest B x L up and skips a cell whose
time, projected from the cells already run (log-log fit of the total, slope at least 1), exceeds
the budget. Then it fits, per stage, the log-log slope of time against B x L, and the linear
slope of peak memory against B x L (bytes per episode-step).
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

EPISODES = (16, 64, 256, 1024)
STEPS = (50, 500)
RENDER_EPISODES = 4
PREFIX = "SCALING-CELL "
SUPERLINEAR = 1.15
STAGE_ORDER = (
    "rollouts",
    "explain",
    "explain: factorize",
    "explain: stability refits",
    "explain: sanity check",
    "explain: deletion",
    "render: 4 rollout grids",
    "render: factor gallery",
)


# ---- in the cell's process -------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Memory:
    """Resident-set readings in bytes; per-stage peaks through ``clear_refs`` when allowed."""

    def __init__(self) -> None:
        self.resettable = self._reset()
        self.highest = 0
        """The highest high-water mark ever read (``ru_maxrss`` itself is reset with it)."""

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def rss(self) -> int:
        return _status_kib("VmRSS") * 1024

    def start(self) -> tuple[int, int]:
        """``(rss, ru_maxrss)`` at a stage's start, after resetting the high-water mark."""
        if self.resettable:
            self._reset()
        return self.rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def hwm(self) -> int:
        """The high-water mark since the last reset, in bytes (``ru_maxrss`` without reset)."""
        if self.resettable:
            mark = _status_kib("VmHWM") * 1024
        else:
            mark = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.highest = max(self.highest, mark)
        return mark

    def peak_since(self, start: tuple[int, int]) -> int:
        rss, maxrss = start
        if self.resettable:
            return max(0, self.hwm() - rss)
        return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss)


class _StageMeter:
    """Times and peaks of consecutive named stages (also ``explain``'s progress callback)."""

    def __init__(self, memory: Memory, prefix: str = "") -> None:
        self.memory, self.prefix = memory, prefix
        self.seconds: dict[str, float] = {}
        self.peak: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.max_hwm = 0
        """The highest absolute high-water mark seen since this meter's first stage (bytes)."""
        self._label: str | None = None

    def __call__(self, label: str) -> None:
        self.max_hwm = max(self.max_hwm, self.memory.hwm())  # before this stage resets it
        self.stop()
        name = "stability refits" if label.startswith("stability") else label
        self._label = self.prefix + name
        self._mem = self.memory.start()
        self._start = time.perf_counter()

    def stop(self) -> None:
        if self._label is None:
            return
        elapsed = time.perf_counter() - self._start
        key = self._label
        self.seconds[key] = self.seconds.get(key, 0.0) + elapsed
        self.peak[key] = max(self.peak.get(key, 0), self.memory.peak_since(self._mem))
        self.held[key] = self.held.get(key, 0) + self.memory.rss() - self._mem[0]
        self.max_hwm = max(self.max_hwm, self.memory.hwm())
        self._label = None

    def run(self, label: str, work: Callable[[], Any]) -> Any:
        self(label)
        value = work()
        self.stop()
        return value


def run_cell(checkpoint: Path, episodes: int, steps: int) -> None:
    """One cell, measured in this (fresh) process; prints one ``PREFIX``-ed JSON line."""
    import torch

    from pytest_dreamer_audit.analysis.pipeline import explain
    from pytest_dreamer_audit.model.checkpoint import load_checkpoint
    from pytest_dreamer_audit.report.render import render_factor_gallery, render_rollout
    from pytest_dreamer_audit.results.explanation import ExplainConfig
    from pytest_dreamer_audit.rollout.rollouts import run_rollouts

    torch.set_num_threads(1)
    agent = load_checkpoint(checkpoint, device="cpu")

    facts: dict[str, Any] = {}

    def audit(b: int, l_: int, meter: _StageMeter | None) -> None:
        m = meter or (lambda _label: None)
        roll = lambda: run_rollouts(agent, "freeway", pomdp=True, episodes=b, steps=l_, seed=0)  # noqa: E731
        trajectory = meter.run("rollouts", roll) if meter else roll()
        inner = _StageMeter(meter.memory, "explain: ") if meter else None
        work = lambda: explain(trajectory, ExplainConfig(), agent=agent, progress=inner or m)  # noqa: E731
        if meter:
            meter("explain")
            explain_start = meter.memory.rss()
            explanation = work()
            inner.stop()
            meter.stop()  # its own peak saw only the last sub-stage (each resets the mark)
            top = max(inner.max_hwm, meter.memory.hwm())
            meter.peak["explain"] = max(0, top - explain_start)
            for table in ("seconds", "peak", "held"):
                getattr(meter, table).update(getattr(inner, table))
        else:
            explanation = work()
        facts["nmf_iterations"] = int(explanation.metrics.iterations)
        facts["valid_steps"] = int(explanation.valid.sum())

        def grids() -> None:
            for episode in range(min(RENDER_EPISODES, b)):
                render_rollout(explanation, episode)

        if meter:
            meter.run("render: 4 rollout grids", grids)
            meter.run("render: factor gallery", lambda: render_factor_gallery(explanation))
        else:
            grids()
            render_factor_gallery(explanation)

    audit(2, 5, None)  # warm-up: first-call costs stay out of the cell
    memory = Memory()
    baseline = memory.rss()
    meter = _StageMeter(memory)
    started = time.perf_counter()
    audit(episodes, steps, meter)
    wall = time.perf_counter() - started
    result = {
        "episodes": episodes,
        "steps": steps,
        "seconds": meter.seconds,
        "peak_bytes": meter.peak,
        "held_bytes": meter.held,
        "baseline_rss_bytes": baseline,
        "process_maxrss_bytes": max(memory.highest, memory.hwm()),
        "per_stage_peaks": memory.resettable,
        "wall_s": wall,
        **facts,
        "package": str(Path(explain.__code__.co_filename).parents[1]),
    }
    print(PREFIX + json.dumps(result), flush=True)


# ---- the parent ------------------------------------------------------------------------------


def loglog_slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of log y against log x (NaN with fewer than 2 points)."""
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a > 0 and b > 0]
    if len(pairs) < 2 or len({a for a, _ in pairs}) < 2:
        return math.nan
    lx, ly = np.log([a for a, _ in pairs]), np.log([b for _, b in pairs])
    return float(np.polyfit(lx, ly, 1)[0])


def linear_slope(x: list[float], y: list[float]) -> float:
    if len(x) < 2 or len(set(x)) < 2:
        return math.nan
    return float(np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)[0])


def _project(done: list[dict[str, Any]], size: int) -> float:
    """Seconds the next cell should take: the totals' log-log fit (slope at least 1)."""
    if not done:
        return 0.0
    sizes = [c["episodes"] * c["steps"] for c in done]
    totals = [sum(c["seconds"][s] for s in _MAIN) for c in done]
    slope = loglog_slope(sizes, totals)
    slope = 1.0 if math.isnan(slope) else max(1.0, slope)
    return totals[-1] * (size / sizes[-1]) ** slope


_MAIN = ("rollouts", "explain", "render: 4 rollout grids", "render: factor gallery")


def tree_digest(folder: Path) -> str:
    """SHA-256 (16 hex digits) of the package's ``.py`` files: which code the cells measured."""
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*.py")):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def bench_scaling(
    command: list[str],
    budget_s: float,
    out: Path,
    json_out: Path | None,
    env: dict[str, str] | None = None,
    source_digest: str = "",
) -> None:
    """Run every cell that fits ``budget_s`` in its own subprocess, then write ``out``."""
    from .machine import describe_here, describe_machine, machine_name

    cells = sorted(((b, s) for b in EPISODES for s in STEPS), key=lambda c: (c[0] * c[1], c[1]))
    done: list[dict[str, Any]] = []
    cut: list[tuple[int, int, float]] = []
    started = time.perf_counter()
    for episodes, steps in cells:
        projected = _project(done, episodes * steps)
        if projected > budget_s:
            cut.append((episodes, steps, projected))
            print(f"  {episodes} x {steps}: cut (projected {projected:.0f} s)", flush=True)
            continue
        run = subprocess.run(
            [*command, str(episodes), str(steps)],
            capture_output=True,
            text=True,
            timeout=max(600.0, 10 * projected),
            check=False,
            env=env,
        )
        lines = [x for x in run.stdout.splitlines() if x.startswith(PREFIX)]
        if run.returncode != 0 or not lines:
            raise RuntimeError(f"cell {episodes} x {steps} failed:\n{run.stderr[-3000:]}")
        cell = json.loads(lines[-1][len(PREFIX) :])
        done.append(cell)
        total = sum(cell["seconds"][s] for s in _MAIN)
        print(f"  {episodes} x {steps}: {total:.1f} s (projected {projected:.1f})", flush=True)
    import torch

    from pytest_dreamer_audit.model.networks import ModelSizes
    from pytest_dreamer_audit.settings import (
        MAX_EPISODES,
        MAX_MEMORY_BYTES,
        MAX_STEPS,
        AuditSettings,
    )

    sizes = ModelSizes(channels=2, actions=3)
    per_step = AuditSettings(checkpoint="x").estimated_bytes(sizes) / (16 * 50)
    limits = {
        "MAX_EPISODES": MAX_EPISODES,
        "MAX_STEPS": MAX_STEPS,
        "MAX_MEMORY_BYTES": MAX_MEMORY_BYTES,
        "estimated_bytes_per_episode_step": per_step,
    }
    if json_out is not None:
        json_out.write_text(json.dumps({"cells": done, "cut": cut, "limits": limits}, indent=1))
    name = machine_name(describe_machine(torch.device("cpu")), 1)
    here = describe_here(1) + (f"; package source digest {source_digest}" if source_digest else "")
    lines = scaling_markdown(done, cut, limits, budget_s, name, here)
    lines.append(f"\nRun took {(time.perf_counter() - started) / 60:.1f} min.")
    text = "\n".join(lines) + "\n"
    print(text)
    with contextlib.suppress(OSError):
        previous = out.read_text()
        marker = "\n## Analysis"
        if marker in previous:  # keep the hand-written analysis below the generated tables
            text += previous[previous.index(marker) :]
    out.write_text(text)


def _fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _mib(x: float) -> str:
    return f"{x / 2**20:.1f}"


def scaling_markdown(
    done: list[dict[str, Any]],
    cut: list[tuple[int, int, float]],
    limits: dict[str, float],
    budget_s: float,
    name: str,
    here: str,
) -> list[str]:
    stages = [s for s in STAGE_ORDER if any(s in c["seconds"] for c in done)]
    lines = [
        f"## Scaling with B x L ({name})",
        "",
        f"{here}. One fresh process per cell; a warm-up audit of 2 x 5 first. "
        "ExplainConfig() defaults, 4 rollout grids + the factor gallery. "
        f"Cells projected over {budget_s:.0f} s were cut. Peak: resident memory the stage needed "
        "above what was resident when it started (MiB); held: what it left resident.",
        "",
        "**Wall time (s)**",
        "",
        "| B x L | episode-steps | " + " | ".join(stages) + " | total |",
        "|---|---|" + "---|" * (len(stages) + 1),
    ]
    for c in done:
        values = [c["seconds"].get(s, math.nan) for s in stages]
        total = sum(c["seconds"][s] for s in _MAIN)
        lines.append(
            f"| {c['episodes']} x {c['steps']} | {c['episodes'] * c['steps']:,} | "
            + " | ".join(_fmt_s(v) for v in values)
            + f" | **{_fmt_s(total)}** |"
        )
    for b, s, projected in cut:
        lines.append(
            f"| {b} x {s} | {b * s:,} | cut: projected {projected:.0f} s > {budget_s:.0f} s |"
            + " |" * len(stages)
        )
    lines += [
        "",
        "**Peak memory above the stage's start (MiB); process peak RSS**",
        "",
        "| B x L | " + " | ".join(stages) + " | held after explain | process max RSS |",
        "|---|" + "---|" * (len(stages) + 2),
    ]
    for c in done:
        held = c["held_bytes"].get("rollouts", 0) + c["held_bytes"].get("explain", 0)
        lines.append(
            f"| {c['episodes']} x {c['steps']} | "
            + " | ".join(_mib(c["peak_bytes"].get(s, math.nan)) for s in stages)
            + f" | {_mib(held)} | {_mib(c['process_maxrss_bytes'])} |"
        )
    size = [c["episodes"] * c["steps"] for c in done]
    upper = [i for i, n in enumerate(size) if n >= 3200]
    at50 = [i for i, c in enumerate(done) if c["steps"] == 50 and c["episodes"] >= 64]
    pairs = [(b, [i for i, c in enumerate(done) if c["episodes"] == b]) for b in EPISODES]
    pairs = [(b, ix) for b, ix in pairs if len(ix) == 2]
    lines += [
        "",
        "**Growth** (log-log slopes of time; 1 is linear; a stage is flagged when its slope "
        f"against B (L = 50, B >= 64) or against L (fixed B) exceeds {SUPERLINEAR}). "
        "Memory: linear slope of the peak against B x L over all cells, bytes per episode-step.",
        "",
        "| stage | vs B x L, all cells | vs B x L, B x L >= 3,200 | vs B at L = 50, B >= 64 | "
        + " | ".join(f"vs L at B = {b}" for b, _ in pairs)
        + " | superlinear? | peak bytes / episode-step | held bytes / episode-step |",
        "|---|---|---|---|" + "---|" * len(pairs) + "---|---|---|",
    ]
    for s in [*stages, "total"]:
        if s == "total":
            t = [sum(c["seconds"][m] for m in _MAIN) for c in done]
            peak = [c["process_maxrss_bytes"] - c["baseline_rss_bytes"] for c in done]
            held = [
                c["held_bytes"].get("rollouts", 0) + c["held_bytes"].get("explain", 0) for c in done
            ]
        else:
            t = [c["seconds"].get(s, math.nan) for c in done]
            peak = [c["peak_bytes"].get(s, 0) for c in done]
            held = [c["held_bytes"].get(s, 0) for c in done]

        def slope(ix: list[int], x: list[float] = size, t: list[float] = t) -> float:
            return loglog_slope([x[i] for i in ix], [t[i] for i in ix])

        b_slope = slope(at50)
        l_slopes = [slope(ix) for _, ix in pairs]
        worst = max([b_slope, *l_slopes], key=lambda v: -math.inf if math.isnan(v) else v)
        flag = "**yes**" if worst > SUPERLINEAR else "no"
        lines.append(
            f"| {s} | {slope(list(range(len(done)))):.2f} | {slope(upper):.2f} | {b_slope:.2f} | "
            + " | ".join(f"{v:.2f}" for v in l_slopes)
            + f" | {flag} | {linear_slope(size, peak):,.0f} | {linear_slope(size, held):,.0f} |"
        )
    iters = ", ".join(
        f"{c['episodes']} x {c['steps']}: {c.get('nmf_iterations', '?')}" for c in done
    )
    from pytest_dreamer_audit.results.explanation import ExplainConfig

    nmf = ExplainConfig().nmf()
    lines += [
        "",
        f"Main NMF fit iterations ({nmf.solver}, {nmf.init}, tol {nmf.tol:g}, at most "
        f"{nmf.max_iter}): {iters}.",
    ]
    lines += [
        "",
        "The total row's peak is the process's peak RSS above its resident set after the "
        "warm-up; its held is what the rollouts and explain left resident.",
        "",
        "**Up-front limits** (`pytest_dreamer_audit/settings.py`): "
        f"MAX_EPISODES = {limits['MAX_EPISODES']:,}, MAX_STEPS = {limits['MAX_STEPS']:,}, "
        f"MAX_MEMORY_BYTES = {limits['MAX_MEMORY_BYTES'] / 2**30:.0f} GiB against "
        "`AuditSettings.estimated_bytes`, which assumes "
        f"{limits['estimated_bytes_per_episode_step']:,.0f} bytes per episode-step for this "
        "agent and the defaults, i.e. at most "
        f"{limits['MAX_MEMORY_BYTES'] / limits['estimated_bytes_per_episode_step']:,.0f} "
        "episode-steps per audit.",
    ]
    return lines


def profile_cell(checkpoint: Path, episodes: int, steps: int, top: int = 30) -> str:
    """cProfile of one B x L audit's explain and render (after the rollouts and a warm-up):
    the ``top`` functions by cumulative time, for finding which one grows superlinearly."""
    import cProfile
    import io
    import pstats

    import torch

    from pytest_dreamer_audit.analysis.pipeline import explain
    from pytest_dreamer_audit.model.checkpoint import load_checkpoint
    from pytest_dreamer_audit.report.render import render_factor_gallery, render_rollout
    from pytest_dreamer_audit.results.explanation import ExplainConfig
    from pytest_dreamer_audit.rollout.rollouts import run_rollouts

    torch.set_num_threads(1)
    agent = load_checkpoint(checkpoint, device="cpu")

    def audit(b: int, l_: int, profiler: cProfile.Profile | None) -> None:
        trajectory = run_rollouts(agent, "freeway", pomdp=True, episodes=b, steps=l_, seed=0)
        if profiler:
            profiler.enable()
        explanation = explain(trajectory, ExplainConfig(), agent=agent)
        for episode in range(min(RENDER_EPISODES, b)):
            render_rollout(explanation, episode)
        render_factor_gallery(explanation)
        if profiler:
            profiler.disable()

    audit(2, 5, None)
    profiler = cProfile.Profile()
    audit(episodes, steps, profiler)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return text.getvalue()
