"""Measure which layout x score combinations localise which Freeway events beyond their nulls.

For the trained checkpoint and for the same architecture with random weights (replayed on the
SAME observations and actions), every layout x score x burn-in (``skip_steps``) is explained and
its claims table computed (``results/semantics.py``). Written as markdown:

1. factor claims: per event / graded fact, whether some claimable factor beats the maxT + Holm
   corrected circular-shift null (value vs null q95, adjusted p);
2. score claims: the score's top-5 per rollout vs each event (precision, base rate, null 5-95%,
   one-sided verdict at 0.05, not corrected across events or configurations);
3. time control: AUC of the step index alone for each event over the analysed steps, reported as
   max(AUC, 1 - AUC), and where each score's picks sit in time;
4. factor status: unstable and start-marker factors, tie fractions, time correlations.

Run: ``OMP_NUM_THREADS=1 python examples/measure_claims.py --out examples/claims_table.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.model.agent import DreamerAgent, build_agent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.results.claims import ClaimsTable, claims_table
from pytest_dreamer_audit.results.config import LAYOUTS, SCORES, ClaimConfig, ExplainConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.nulls import spearman_columns
from pytest_dreamer_audit.results.semantics import table_facts
from pytest_dreamer_audit.rollout.rollouts import Trajectory, replay_posteriors, run_rollouts

RANK = 10
TOP_K = 5
REFITS = 2
RANDOM_SEED = 12345
LEVEL = ClaimConfig().level

SHORT = {
    "chicken_row": "row",
    "move_ready": "ready",
    "car_adjacent": "adj",
    "up_hits": "uphit",
    "executed_action=noop": "a=noop",
    "executed_action=up": "a=up",
    "executed_action=down": "a=down",
    "sticky": "sticky",
    "collision_visible": "coll",
    "scored_visible": "score",
    "collision": "coll_t",
    "scored": "score_t",
}
LAYOUT_SHORT = {"pooled": "pool", "per_step": "step"}
SCORE_SHORT = {"activation": "act", "reconstruction": "rec", "surprise": "surp"}


def short(name: str) -> str:
    """A short column name for a fact."""
    return SHORT.get(name, name)


@dataclass(frozen=True)
class Run:
    """One explained configuration and its claims."""

    weights: str
    layout: str
    score: str
    skip: int
    explanation: Explanation
    table: ClaimsTable
    explain_s: float
    claims_s: float

    @property
    def key(self) -> str:
        return (
            f"{self.weights[:5]} {LAYOUT_SHORT[self.layout]} {SCORE_SHORT[self.score]} s{self.skip}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checkpoint", default="examples/checkpoints/freeway_pomdp.pth")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=300000, help="first episode seed")
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--skip-steps", type=int, nargs="+", default=[0, 5])
    return parser.parse_args(argv)


def randomized_trajectory(agent: DreamerAgent, trajectory: Trajectory) -> Trajectory:
    """The trajectory with the latents of a random-weights agent fed its observations/actions.

    ``posterior_probs`` is a property of the logits, so replacing the logits replaces it too.
    """
    randomized = build_agent(agent.sizes, seed=RANDOM_SEED).to(agent.device)
    replayed = replay_posteriors(randomized, trajectory)
    return dataclasses.replace(
        trajectory,
        prior_logits=replayed.prior_logits.clone(),
        posterior_logits=replayed.posterior_logits.clone(),
        stoch=replayed.stoch.clone(),
        deter=replayed.deter.clone(),
    )


def step_auc(steps: np.ndarray, hits: np.ndarray) -> float:
    """AUC of the step index alone for predicting ``hits`` (NaN if ``hits`` is constant);
    above 0.5: later steps are more often events."""
    if hits.all() or not hits.any():
        return math.nan
    try:
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(hits, steps))
    except ImportError:  # scikit-learn is optional: Mann-Whitney U gives the same number
        from scipy.stats import mannwhitneyu

        u = mannwhitneyu(steps[hits], steps[~hits], alternative="two-sided").statistic
        auc = float(u) / (int(hits.sum()) * int((~hits).sum()))
    return auc


def rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation (average ranks), NaN when either side is constant."""
    return float(spearman_columns(np.asarray(a, dtype=np.float64)[:, None], b)[0])


def fmt(value: float, digits: int = 2) -> str:
    if math.isnan(value):
        return "nan"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("0.") else text.replace("-0.", "-.")


def fmt_p(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def best_claimable(row_values: Sequence[float], p_values: Sequence[float], graded: bool) -> float:
    """The strongest value among factors that were tested (p not NaN); NaN if none."""
    tested = [
        abs(v) if graded else v
        for v, p in zip(row_values, p_values, strict=True)
        if not math.isnan(p) and not math.isnan(v)
    ]
    return max(tested) if tested else math.nan


def factor_table(runs: Sequence[Run], names: Sequence[str]) -> list[str]:
    lines = [
        "## 1. Events localised beyond their null by some factor",
        "",
        f"Cell: **value>q95 (p)** where some claimable factor claims the fact (row.claim >= 0: "
        f"maxT over factors + Holm over facts, p <= {LEVEL}); otherwise the best claimable "
        "factor's value / null q95 in plain text, `-` if no factor may claim. Events: precision "
        f"of a factor's top-{ClaimConfig().k} picks; `row` (graded): |Spearman|. The factor "
        "columns do not depend on the score (the NMF fit and refits are the same), so the three "
        "score rows of one layout/weights/skip repeat; they are kept to confirm it.",
        "",
        "| config | " + " | ".join(short(n) for n in names) + " | base rates |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for run in runs:
        by_name = {row.name: row for row in run.table.facts}
        cells = []
        for name in names:
            row = by_name.get(name)
            if row is None:
                cells.append("n/a")
                continue
            graded = row.kind == "graded"
            if row.claim >= 0:
                value = row.per_factor[row.claim]
                value = abs(value) if graded else value
                p = row.p_values[row.claim]
                cells.append(f"**{fmt(value)}>{fmt(row.null_q95)} ({fmt_p(p)}) f{row.claim}**")
            else:
                best = best_claimable(row.per_factor, row.p_values, graded)
                cells.append("-" if math.isnan(best) else f"{fmt(best)}/{fmt(row.null_q95)}")
        bases = " ".join(
            f"{short(r.name)}={fmt(r.base_rate, 3)}" for r in run.table.facts if r.kind == "event"
        )
        lines.append(f"| {run.key} | " + " | ".join(cells) + f" | {bases} |")
    lines.append("")
    return lines


def claims_detail(runs: Sequence[Run]) -> list[str]:
    lines = [
        "### Claims in detail (each claiming factor's own status)",
        "",
        "| config | fact | factor | value | null q95 | adj p | base | factor time rho | "
        "stability | start frac |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen: set[tuple[str, str, int, str]] = set()
    for run in runs:
        for row in run.table.facts:
            if row.claim < 0:
                continue
            ident = (run.weights, run.layout, run.skip, row.name)
            if ident in seen:  # the same NMF for every score: list each claim once
                continue
            seen.add(ident)
            status = run.table.factors[row.claim]
            lines.append(
                f"| {run.weights[:5]} {LAYOUT_SHORT[run.layout]} s{run.skip} (all scores) | "
                f"{short(row.name)} | {row.claim} | {fmt(row.per_factor[row.claim], 3)} | "
                f"{fmt(row.null_q95, 3)} | {fmt_p(row.p_values[row.claim])} | "
                f"{fmt(row.base_rate, 3)} | {fmt(status.time_spearman)} | "
                f"{fmt(status.stability, 3)} | {fmt(status.start_fraction)} |"
            )
    if not seen:
        lines.append("| (none) | | | | | | | | | |")
    lines.append("")
    return lines


def score_table(runs: Sequence[Run], names: Sequence[str]) -> list[str]:
    lines = [
        f"## 2. The score's top-{TOP_K} per rollout vs each event",
        "",
        "Cell: precision / base rate / null 5-95% / verdict (`above`: p_above <= 0.05, `BELOW`: "
        "p_below <= 0.05, else `chance`). One-sided p from 999 circular shifts, NOT corrected "
        "over the events or the configurations: with ~9 events x 24 configs some verdicts are "
        "expected by chance alone. Surprise does not use the NMF, so its pool and step rows "
        "must agree.",
        "",
        "| config | " + " | ".join(short(n) for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for run in runs:
        by_name = {row.name: row for row in run.table.scores}
        cells = []
        for name in names:
            s = by_name.get(name)
            if s is None:
                cells.append("n/a")
                continue
            v = s.verdict(LEVEL)
            v = v.upper() if v == "below" else v  # shouted, as in the report
            text = (
                f"{fmt(s.precision, 3)}/{fmt(s.base_rate, 3)}/"
                f"{fmt(s.null_q05, 3)}-{fmt(s.null_q95, 3)} {v}"
            )
            cells.append(f"**{text}**" if v != "chance" else text)
        lines.append(f"| {run.key} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def analysed_steps(explanation: Explanation) -> np.ndarray:
    """``[n]`` the step index of each analysed observation (valid order)."""
    return np.nonzero(explanation.valid)[0].astype(np.float64)


def time_tables(runs: Sequence[Run], skips: Sequence[int]) -> list[str]:
    lines = [
        "## 3. Time control",
        "",
        "max(AUC, 1 - AUC) of the step index alone for each event over the analysed steps (the "
        "direction: `late` if later steps are more often events, `early` otherwise). It depends "
        "only on the rollouts and the burn-in, not on weights, layout or score. 0.5 = time says "
        "nothing; near 1 = the step alone tells the event apart. `row` (graded): Spearman of the "
        "chicken row with the step.",
        "",
    ]
    by_skip = {run.skip: run for run in runs if run.weights == "trained"}
    header_names: list[str] = []
    cells: dict[int, dict[str, str]] = {}
    for skip in skips:
        explanation = by_skip[skip].explanation
        valid = explanation.valid
        steps = analysed_steps(explanation)
        cells[skip] = {}
        for name, values, event in table_facts(explanation):
            if name not in header_names:
                header_names.append(name)
            if event:
                hits = values[valid].astype(bool)
                if hits.all() or not hits.any():
                    cells[skip][name] = "const"
                    continue
                auc = step_auc(steps, hits)
                late = "late" if auc >= 0.5 else "early"
                cells[skip][name] = f"{fmt(max(auc, 1.0 - auc))} {late}"
            else:
                cells[skip][name] = f"rho {fmt(rank_corr(steps, values[valid].astype(float)))}"
    lines.append("| skip | analysed | " + " | ".join(short(n) for n in header_names) + " |")
    lines.append("|---|---|" + "---|" * len(header_names))
    for skip in skips:
        count = int(by_skip[skip].explanation.valid.sum())
        row = [cells[skip].get(name, "n/a") for name in header_names]
        lines.append(f"| {skip} | {count} | " + " | ".join(row) + " |")
    lines += [
        "",
        f"### Where each score's top-{TOP_K} picks sit in time",
        "",
        "mean step of the picks vs mean analysed step, share of picks in the first 3 analysed "
        "steps of their episode, and Spearman of the observation score with the step over the "
        "analysed steps.",
        "",
        "| config | pick mean step | analysed mean step | picks in first 3 | score-step rho |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        e = run.explanation
        top = e.top_observations[:, :TOP_K]
        picked = top[top >= 0]
        steps = analysed_steps(e)
        first = picked < (run.skip + 3)
        scores = e.observation_scores[e.valid]
        lines.append(
            f"| {run.key} | {picked.mean():.1f} | {steps.mean():.1f} | {fmt(first.mean())} | "
            f"{fmt(rank_corr(scores, steps))} |"
        )
    lines.append("")
    return lines


def status_table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "## 4. Factor status (per weights x layout x skip; the same for every score)",
        "",
        "unstable: min matched cosine over refits < 0.8; start: marks the episode start; "
        "claimable = neither. time |rho|: mean and max over factors of |Spearman(activation, "
        "step)|. rel err / stab: NMF relative error and mean / min matched cosine.",
        "",
        "| config | claimable | unstable | start | mean tie frac | time abs rho mean/max | "
        "rel err | stab mean/min | iters |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    seen: set[tuple[str, str, int]] = set()
    for run in runs:
        ident = (run.weights, run.layout, run.skip)
        if ident in seen:
            continue
        seen.add(ident)
        factors = run.table.factors
        times = np.array([abs(f.time_spearman) for f in factors], dtype=np.float64)
        m = run.explanation.metrics
        lines.append(
            f"| {run.weights[:5]} {LAYOUT_SHORT[run.layout]} s{run.skip} | "
            f"{sum(f.claimable for f in factors)}/{len(factors)} | "
            f"{sum(f.unstable for f in factors)} | {sum(f.marks_start for f in factors)} | "
            f"{fmt(float(np.mean([f.tie_fraction for f in factors])))} | "
            f"{fmt(float(np.nanmean(times)))}/{fmt(float(np.nanmax(times)))} | "
            f"{fmt(m.relative_error, 3)} | {fmt(m.stability_mean_cosine, 3)}/"
            f"{fmt(m.stability_min_cosine, 3)} | {m.iterations} |"
        )
    lines.append("")
    return lines


def check_score_independence(runs: Sequence[Run]) -> list[str]:
    """Confirm that the factor table does not depend on the score, and surprise not on layout."""
    notes: list[str] = []
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.weights, run.layout, run.skip), []).append(run)
    for ident, members in groups.items():
        first = [r.to_json() for r in members[0].table.facts]
        for other in members[1:]:
            if [r.to_json() for r in other.table.facts] != first:
                notes.append(f"factor table differs between scores for {ident}")
    surprise = {
        (r.weights, r.skip, r.layout): r.explanation.top_observations
        for r in runs
        if r.score == "surprise"
    }
    for (weights, skip, layout), top in surprise.items():
        if layout == "pooled":
            other = surprise.get((weights, skip, "per_step"))
            if other is not None and not np.array_equal(top, other):
                notes.append(f"surprise picks differ between layouts for {weights} s{skip}")
    return notes or [
        "Checked: the factor table is identical across the three scores of each "
        "weights/layout/skip, and surprise picks are identical across layouts."
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    agent = load_checkpoint(args.checkpoint, device="cpu")
    t0 = time.perf_counter()
    trained = run_rollouts(
        agent, "freeway", pomdp=True, episodes=args.episodes, steps=args.steps, seed=args.seed
    )
    rollout_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    random_traj = randomized_trajectory(agent, trained)
    replay_s = time.perf_counter() - t0
    trajectories = {"trained": trained, "random": random_traj}

    runs: list[Run] = []
    for weights, trajectory in trajectories.items():
        for layout in LAYOUTS:
            for score in SCORES:
                for skip in args.skip_steps:
                    config = ExplainConfig(
                        rank=RANK,
                        layout=layout,
                        score=score,
                        top_k=TOP_K,
                        stability_refits=REFITS,
                        skip_steps=skip,
                    )
                    t0 = time.perf_counter()
                    explanation = explain(trajectory, config, agent=None)
                    t1 = time.perf_counter()
                    table = claims_table(explanation)
                    t2 = time.perf_counter()
                    run = Run(weights, layout, score, skip, explanation, table, t1 - t0, t2 - t1)
                    runs.append(run)
                    print(
                        f"{run.key}: explain {run.explain_s:.1f}s, claims {run.claims_s:.1f}s",
                        file=sys.stderr,
                        flush=True,
                    )
    total_s = time.perf_counter() - started

    fact_names: list[str] = []
    event_names: list[str] = []
    for run in runs:
        for row in run.table.facts:
            if row.name not in fact_names:
                fact_names.append(row.name)
        for s in run.table.scores:
            if s.name not in event_names:
                event_names.append(s.name)

    explain_times = [r.explain_s for r in runs]
    claims_times = [r.claims_s for r in runs]
    lines = [
        "# Which layout x score localises which Freeway events beyond their nulls",
        "",
        f"- machine: processor `{platform.processor() or platform.machine()}`, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"- checkpoint: `{args.checkpoint}` (game {agent.metadata.game}, pomdp "
        f"{agent.metadata.pomdp}, env steps {agent.metadata.training.get('env_steps', '?')})",
        f"- rollouts: {args.episodes} episodes x {args.steps} steps, episode seeds "
        f"{args.seed}..{args.seed + args.episodes - 1}, sampled actions; "
        f"{int(trained.valid.sum())} valid steps, mean return {float(trained.returns.mean()):.2f}",
        f"- random-weights control: `build_agent(agent.sizes, seed={RANDOM_SEED})` replayed on "
        "the same observations and actions (`replay_posteriors`)",
        f"- explain: rank {RANK}, top_k {TOP_K}, stability_refits {REFITS}, solver mu, init "
        f"nndsvda, agent=None; skip_steps {args.skip_steps}; claims: {ClaimConfig()}",
        f"- wall time: rollouts {rollout_s:.1f} s, replay {replay_s:.1f} s; explain per config "
        f"mean {np.mean(explain_times):.2f} s (min {min(explain_times):.2f}, max "
        f"{max(explain_times):.2f}); claims_table mean {np.mean(claims_times):.2f} s; total "
        f"{total_s:.0f} s for {len(runs)} configs",
        "- config names: `weights layout score s<skip>`; pool = pooled, step = per_step; act / "
        "rec / surp = activation / reconstruction / surprise",
        "- fact names: " + ", ".join(f"{short(n)} = {n}" for n in fact_names if short(n) != n),
        "",
        "Per-config explain wall time (s): "
        + ", ".join(f"{r.key} {r.explain_s:.1f}" for r in runs),
        "",
    ]
    lines += factor_table(runs, fact_names)
    lines += claims_detail(runs)
    lines += score_table(runs, event_names)
    lines += time_tables(runs, args.skip_steps)
    lines += status_table(runs)
    lines += ["## Consistency checks", "", *(f"- {n}" for n in check_score_independence(runs))]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out} in {total_s:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
