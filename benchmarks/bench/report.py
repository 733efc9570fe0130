"""The markdown tables of a run and the goal checks (goals set on an H100; see README.md)."""

from __future__ import annotations

import math

from .agent import STEPS
from .end_to_end import EndToEndRow
from .nmf import NMFSuite
from .nmf_data import BASE_ROWS, NMF_ITERATIONS
from .record import Goal, RunResult
from .render import RenderSuite
from .rollouts import RolloutSuite

ROLLOUTS_SPEEDUP_64 = 100.0
NMF_6400K_S = 0.2
RENDER_SPEEDUP = 20.0
END_TO_END_64_S = 2.0

ROLLOUT_COLUMNS = (
    "B x L | notebook loop (s) | batched (s) | speed-up | games only (s) "
    "| batched / games only | batched steps/s | torch ops / step"
)
NMF_COLUMNS = (
    "N rows | solver | iterations | time (s) | ms / it | rel. error "
    "| ms / it vs package mu | memory floor fused / as written (s) | compute floor (s)"
)
RENDER_COLUMNS = (
    "notebook figure (s) | package render_rollout (s) | speed-up | factor gallery (s) "
    "| PNG bytes notebook / package"
)
GOAL_COLUMNS = "goal | measured here | met here"


def seconds_text(value: float | None) -> str:
    """Seconds with two or three significant digits; ``-`` where there is no figure."""
    if value is None or not math.isfinite(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio_text(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1f}x"


def check_goals(result: RunResult) -> tuple[Goal, ...]:
    """Each goal this run measured: rollouts and end to end at B = 64, NMF at 6.4M rows."""
    goals = []
    for row in result.rollouts.rows if result.rollouts else ():
        if row.episodes == 64:
            goals.append(
                Goal(
                    "batched 64 x 50 rollouts >= 100x the notebook loop",
                    ratio_text(row.speedup),
                    row.speedup >= ROLLOUTS_SPEEDUP_64,
                )
            )
    for case in result.nmf.cases if result.nmf else ():
        if case.rows == 100 * BASE_ROWS:
            mu = case.solvers[0]
            device = mu.device or "?"
            goals.append(
                Goal(
                    "NMF 6.4M rows <= 0.2 s on GPU (package mu)",
                    f"{seconds_text(mu.best_s)} s on {device}",
                    mu.best_s <= NMF_6400K_S if "cuda" in device else None,
                )
            )
    if result.render is not None:
        speedup = result.render.speedup
        goals.append(
            Goal("rendering >= 20x the notebook's", ratio_text(speedup), speedup >= RENDER_SPEEDUP)
        )
    for e2e in result.end_to_end or ():
        if e2e.episodes == 64:
            on_gpu = result.machine.gpu is not None
            goals.append(
                Goal(
                    "end to end 64 x 50 < 2 s on GPU",
                    f"{seconds_text(e2e.stages_s.total)} s on {result.machine.device}",
                    e2e.stages_s.total < END_TO_END_64_S if on_gpu else None,
                )
            )
    return tuple(goals)


def markdown(result: RunResult) -> str:
    """The run's section of ``benchmarks/README.md``: the machine, then a table per suite."""
    lines = _header(result)
    if result.rollouts is not None:
        lines += _rollouts(result.rollouts)
    if result.nmf is not None:
        lines += _nmf(result.nmf)
    if result.render is not None:
        lines += _render(result.render)
    if result.end_to_end is not None:
        lines += _end_to_end(result.end_to_end)
    if result.goals:
        lines += _table_head(
            "**Goals** (set on an H100; this run's device above)",
            GOAL_COLUMNS,
        )
        lines += [f"| {g.goal} | {g.measured} | {g.met_text} |" for g in result.goals]
    return "\n".join(lines) + "\n"


def _table_head(title: str, columns: str) -> list[str]:
    """A blank line, the bold title, a blank line, the columns (`` | ``-separated), the rule."""
    return ["", title, "", f"| {columns} |", "|" + "---|" * (columns.count(" | ") + 1)]


def _header(result: RunResult) -> list[str]:
    m, agent = result.machine, result.agent
    lines = [
        f"### {result.name}",
        "",
        f"- CPU: {m.cpu_model} (family/model {m.cpu_family_model}, "
        f"{', '.join(m.cpu_simd) or 'no SIMD flags read'}), {m.usable_cpus} usable of "
        f"{m.logical_cpus} logical CPUs, {m.memory_gib} GiB; device: {m.gpu or 'CPU only'} "
        f"({m.device})",
        f"- torch {m.torch} ({m.torch_blas}), {m.torch_threads} intra-op thread(s); "
        f"numpy {m.numpy}, matplotlib {m.matplotlib}, torchnmf {m.torchnmf}, "
        f"scikit-learn {m.scikit_learn or 'absent'}; load average at start "
        f"{', '.join(f'{v:.2f}' for v in m.load_average_at_start)}",
        f"- agent: {agent.kind}" + (f" (env steps {agent.env_steps})" if agent.env_steps else ""),
        f"- {result.mode}; best of {result.args.repeats} after 1 warm-up unless said "
        f"otherwise; run took {result.duration_s / 60:.1f} min",
    ]
    return lines + [f"- note: {n}" for n in result.notes]


def _rollouts(suite: RolloutSuite) -> list[str]:
    lines = _table_head(
        f"**Rollouts** (B episodes x {STEPS} steps; same seeds; actions identical to the "
        f"notebook loop's on {suite.same_actions_fraction:.1%} of steps, "
        f"{suite.checked_episodes} episodes checked)",
        ROLLOUT_COLUMNS,
    )
    for row in suite.rows:
        ops = row.batched_torch_ops_per_step
        lines.append(
            f"| {row.episodes} x {row.steps} | {seconds_text(row.notebook_loop.best_s)} "
            f"| {seconds_text(row.batched.best_s)} | {ratio_text(row.speedup)} "
            f"| {seconds_text(row.games_only.best_s)} | {ratio_text(row.batched_over_games_only)} "
            f"| {row.batched_steps_per_s:.0f} | {'-' if ops is None else f'{ops:.0f}'} |"
        )
    return lines


def _nmf(suite: NMFSuite) -> list[str]:
    lines = _table_head(
        f"**NMF** ([N, 20] posterior rows, rank 10, {NMF_ITERATIONS} iterations, tol 0, "
        f"same NNDSVDa init; copy bandwidth {suite.bandwidth.bytes_per_s / 1e9:.1f} GB/s read "
        f"+ write, sgemm {suite.gemm.flop_per_s / 1e9:.0f} GFLOP/s, both measured here)",
        NMF_COLUMNS,
    )
    for case in suite.cases:
        f = case.floor
        floors = (
            f"{seconds_text(f.memory_floor_fused_s)} / {seconds_text(f.memory_floor_as_written_s)}"
        )
        runs = "1 run" if case.timed_runs == 1 else f"best of {case.timed_runs}"
        for entry in case.solvers:
            lines.append(
                f"| {case.rows:,} ({runs}) | {entry.solver} | {entry.iterations} "
                f"| {seconds_text(entry.best_s)} | {1e3 * entry.s_per_iteration:.2f} "
                f"| {entry.relative_error:.5f} | {ratio_text(entry.vs_package_mu)} "
                f"| {floors} | {seconds_text(f.compute_floor_s)} |"
            )
    for case in suite.cases:
        lines += [f"- {case.rows:,} rows: {e.solver}: {e.note}" for e in case.solvers if e.note]
    return lines + [f"- {note}" for note in suite.notes]


def _render(suite: RenderSuite) -> list[str]:
    title = (
        f"**Rendering** one {suite.steps}-step rollout to PNG bytes "
        "(CPU: one uint8 array, glyphs from matplotlib's FreeType)"
    )
    return [
        *_table_head(title, RENDER_COLUMNS),
        f"| {seconds_text(suite.notebook_figure.best_s)} "
        f"| {seconds_text(suite.package_render_rollout.best_s)} "
        f"| {ratio_text(suite.speedup)} | {seconds_text(suite.package_factor_gallery.best_s)} "
        f"| {suite.notebook_png_bytes:,} / {suite.package_png_bytes:,} |",
    ]


def _end_to_end(rows: tuple[EndToEndRow, ...]) -> list[str]:
    names = [name for name, _ in rows[0].stages_s.stages]
    lines = _table_head(
        f"**End to end** (load, rollouts, explain, render; {rows[0].config}; seconds)",
        " | ".join(["B x L", *names, "total"]),
    )
    for row in rows:
        cells = " | ".join(seconds_text(row.stages_s.seconds(name)) for name in names)
        total = seconds_text(row.stages_s.total)
        lines.append(f"| {row.episodes} x {row.steps} | {cells} | **{total}** |")
    return lines
