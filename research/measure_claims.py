"""Measure which layout x score combinations localise which Freeway events beyond their nulls.

For the trained checkpoint and for the same network with its weights permuted (every layer that
makes the posteriors, one permutation per seed, over several seeds; replayed on the SAME
observations and actions), every layout x score x burn-in (``skip_steps``) is explained and
its claims table computed (``results/claims.py``). Every claim is tested against both nulls
(``results/two_nulls.py``): circular shifts within each episode and the episode swap (the facts
of other episodes at the same steps, ``results/episode_swaps.py``); its p-value is the larger of
the two. Findings that beat the shifts but not the swap are shown as ``time``. Written as
markdown:

1. factor claims: per event / graded fact, the best factor's rank correlation (events: the
   rank-biserial correlation of its whole activation with the event; graded: Spearman) against
   the best-of-factors null q95 under shifts / swaps, with the adjusted p; the random-weights
   rows count the seeds that claim (and that show only ``time``) and give the spread;
2. score claims: the score's top-k per rollout vs each event (precision, base rate, both nulls'
   5-95%, verdict after Holm over the table's events and directions), and the effect over the
   swap null with its episode-bootstrap 95% interval;
3. time control: AUC of the step index alone for each event over the analysed steps, reported as
   max(AUC, 1 - AUC), and where each score's picks sit in time;
4. factor status: unstable and start-marker factors, tie fractions, time correlations.

Run: ``OMP_NUM_THREADS=1 python research/measure_claims.py --out research/claims_table.md``
(``--configs pooled:surprise pooled:activation`` restricts the layout x score grid).
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
from pytest_dreamer_audit.analysis.randomization import match_scale
from pytest_dreamer_audit.analysis.replays import randomized_replays
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.results.claims import ClaimsTable, claims_table
from pytest_dreamer_audit.results.config import LAYOUTS, SCORES, ClaimConfig, ExplainConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.nulls import spearman_columns
from pytest_dreamer_audit.results.semantics import table_facts
from pytest_dreamer_audit.results.values import FactAssociation, ScoreAssociation
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts

RANK = 10
TOP_K = 5
REFITS = 2
RANDOM_SEEDS = tuple(ExplainConfig().sanity_seed + i for i in range(5))
"""The permutation seeds of the random-weights control (the sanity check's: 12345 + i)."""
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
    """One explained configuration and its claims (``seed``: the permutation seed of a
    random-weights run, None for the trained weights)."""

    weights: str
    layout: str
    score: str
    skip: int
    explanation: Explanation
    table: ClaimsTable
    explain_s: float
    claims_s: float
    seed: int | None = None

    @property
    def config(self) -> str:
        """The layout x score x skip, without the weights."""
        return f"{LAYOUT_SHORT[self.layout]} {SCORE_SHORT[self.score]} s{self.skip}"

    @property
    def who(self) -> str:
        """``train`` or ``r<seed>``."""
        return "train" if self.seed is None else f"r{self.seed}"

    @property
    def key(self) -> str:
        return f"{self.who} {self.config}"

    @property
    def fit(self) -> tuple[str, int | None, str, int]:
        """What the NMF (so the fact table) depends on: weights, seed, layout, skip."""
        return (self.weights, self.seed, self.layout, self.skip)


def parse_config(text: str) -> tuple[str, str]:
    """``layout:score`` -> (layout, score), checked against the known names."""
    layout, _, score = text.partition(":")
    if layout not in LAYOUTS or score not in SCORES:
        raise argparse.ArgumentTypeError(
            f"expected layout:score with layout in {LAYOUTS} and score in {SCORES}, got {text!r}"
        )
    return layout, score


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checkpoint", default="examples/checkpoints/freeway_pomdp.pth")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=300000, help="first episode seed")
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--skip-steps", type=int, nargs="+", default=[0, 5])
    parser.add_argument(
        "--random-seeds",
        type=int,
        nargs="+",
        default=list(RANDOM_SEEDS),
        help="permutation seeds of the random-weights control (at least 5 recommended)",
    )
    parser.add_argument(
        "--configs",
        type=parse_config,
        nargs="+",
        default=None,
        help="layout:score pairs to run (default: every layout x score)",
    )
    return parser.parse_args(argv)


def randomized_trajectories(
    agent: DreamerAgent, trajectory: Trajectory, seeds: Sequence[int]
) -> list[Trajectory]:
    """The trajectory with the latents of the agent whose posterior-making layers are permuted
    (``analysis/randomization.permute_parameters``, one permutation per seed), fed its
    observations and actions, the logits rescaled to the trained spread (``match_scale``: one
    factor for the posterior's, one for the prior's), as the sanity check builds them.

    ``posterior_probs`` is a property of the logits, so replacing the logits replaces it too.
    """
    valid = trajectory.valid.bool()
    out = []
    for replayed in randomized_replays(agent, trajectory, seeds):
        posterior = match_scale(replayed.posterior_logits, trajectory.posterior_logits, valid)
        prior = match_scale(replayed.prior_logits, trajectory.prior_logits, valid)
        out.append(
            dataclasses.replace(
                trajectory,
                prior_logits=prior.clone(),
                posterior_logits=posterior.clone(),
                stoch_classes=replayed.stoch.argmax(dim=-1),
                deter=replayed.deter.clone(),
            )
        )
    return out


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


def fmt_signed(value: float, digits: int = 2) -> str:
    return "nan" if math.isnan(value) else ("+" if value >= 0 else "") + fmt(value, digits)


def fmt_p(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def fmt_range(values: Sequence[float], digits: int = 2) -> str:
    """``min to max`` of the defined values (``-`` when none is)."""
    defined = [v for v in values if not math.isnan(v)]
    if not defined:
        return "-"
    low, high = min(defined), max(defined)
    return fmt(low, digits) if low == high else f"{fmt(low, digits)} to {fmt(high, digits)}"


# --- factor claims -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactState:
    """What one fact row says: ``state`` is ``claim`` (beats both nulls), ``time`` (beats the
    shifts only), ``none`` (neither) or ``untested`` (no factor may claim); ``factor`` the
    factor shown, ``value`` its rank correlation (|rho| for a graded fact)."""

    state: str
    factor: int
    value: float


def _strength(row: FactAssociation, j: int) -> float:
    value = row.correlations[j]
    return abs(value) if row.kind == "graded" else value


def fact_state(row: FactAssociation) -> FactState:
    """The claim, else the strongest factor another recorded fact explains, else the strongest
    "time" factor, else the strongest tested factor."""
    if row.claim >= 0:
        return FactState("claim", row.claim, _strength(row, row.claim))
    explained = [j for j, yes in enumerate(row.explained_by_other) if yes]
    if explained:
        j = max(explained, key=lambda j: _strength(row, j))
        return FactState("explained", j, _strength(row, j))
    time_only = [j for j, yes in enumerate(row.time_only) if yes]
    if time_only:
        j = max(time_only, key=lambda j: _strength(row, j))
        return FactState("time", j, _strength(row, j))
    tested = [
        j
        for j, p in enumerate(row.p_values)
        if not math.isnan(p) and not math.isnan(row.correlations[j])
    ]
    if not tested:
        return FactState("untested", -1, math.nan)
    j = max(tested, key=lambda j: _strength(row, j))
    return FactState("none", j, _strength(row, j))


def fact_cell(row: FactAssociation) -> str:
    state = fact_state(row)
    if state.state == "untested":
        return "-"
    nulls = f"{fmt(row.null_q95)}/{fmt(row.swap_q95)}"
    j = state.factor
    if state.state == "claim":
        return f"**{fmt(state.value)} f{j} >{nulls} p{fmt_p(row.p_values[j])}**"
    if state.state == "explained":
        return f"by {row.controlled_for} {fmt(state.value)} f{j} {nulls}"
    if state.state == "time":
        return (
            f"time {fmt(state.value)} f{j} {nulls} (shift p{fmt_p(row.shift_p_values[j])}, "
            f"p{fmt_p(row.p_values[j])})"
        )
    return f"{fmt(state.value)} {nulls}"


def random_fact_cell(rows: Sequence[FactAssociation | None]) -> str:
    """Over the permutation seeds: how many claim, how many show only "time", and the spread of
    the value shown (the claim's, else the strongest factor's)."""
    states = [fact_state(r) for r in rows if r is not None]
    if not states:
        return "n/a"
    claims = sum(s.state == "claim" for s in states)
    times = sum(s.state == "time" for s in states)
    spread = fmt_range([s.value for s in states])
    text = f"claim {claims}/{len(states)}, time {times}/{len(states)}; {spread}"
    return f"**{text}**" if claims else text


def _by_config(runs: Sequence[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.config, []).append(run)
    return groups


def factor_table(runs: Sequence[Run], names: Sequence[str], seeds: Sequence[int]) -> list[str]:
    lines = [
        "## 1. Facts localised beyond both nulls by some factor",
        "",
        "Trained rows, cell: **value fN >shift q95/swap q95 pP** where claimable factor N "
        f"claims the fact (row.claim >= 0: beyond circular shifts AND the episode swap, maxT over "
        f"factors + Holm over facts, p <= {LEVEL}; events also need its top-k precision above "
        "the base rate); `time value fN q95/q95 (shift p, p)` where the factor beats the shifts "
        "but not the swap (the same steps of other episodes show it: the step's, not the "
        "episode's); otherwise the strongest tested factor's value and the two q95 in plain "
        "text; `-` if no factor may claim. Value: events, the rank-biserial correlation of the "
        "factor's whole activation with the event (one-sided: positive = higher at the event); "
        "`row` (graded): |Spearman|. q95: the best claimable factor's null quantile under each "
        f"null. Random rows (`rand x{len(seeds)}`, permutation seeds "
        f"{', '.join(map(str, seeds))}): seeds that claim / that show only time, and the "
        "value's min to max over the seeds. The factor columns do not depend on the score (the "
        "NMF fit and refits are the same), so the score rows of one layout/skip repeat.",
        "",
        "| config | " + " | ".join(short(n) for n in names) + " | base rates |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for config, members in _by_config(runs).items():
        trained = [r for r in members if r.seed is None]
        randoms = [r for r in members if r.seed is not None]
        for run in trained:
            by_name = {row.name: row for row in run.table.facts}
            cells = [fact_cell(by_name[n]) if n in by_name else "n/a" for n in names]
            bases = " ".join(
                f"{short(r.name)}={fmt(r.base_rate, 3)}"
                for r in run.table.facts
                if r.kind == "event"
            )
            lines.append(f"| {run.key} | " + " | ".join(cells) + f" | {bases} |")
        if randoms:
            tables = [{row.name: row for row in r.table.facts} for r in randoms]
            cells = [random_fact_cell([t.get(n) for t in tables]) for n in names]
            lines.append(f"| rand x{len(randoms)} {config} | " + " | ".join(cells) + " | |")
    lines.append("")
    return lines


def claims_detail(runs: Sequence[Run]) -> list[str]:
    lines = [
        "### Factor claims and time findings in detail (each factor's own status)",
        "",
        "Every fact row with a claim or a time-only factor, listed once per weights/seed x "
        "layout x skip (the NMF does not depend on the score). value: the tested rank "
        "correlation; prec: the factor's top-k precision (events); effect: value minus its mean "
        "under the episode swap, episode-bootstrap 95% interval.",
        "",
        "| weights layout skip | fact | factor | label | value | prec / base | shift q95 | "
        "swap q95 | p (both) | shift p | effect [95%] | time rho | stability | start frac |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen: set[tuple[str, int | None, str, int, str]] = set()
    for run in runs:
        for row in run.table.facts:
            state = fact_state(row)
            if state.state not in ("claim", "time", "explained"):
                continue
            ident = (*run.fit, row.name)
            if ident in seen:
                continue
            seen.add(ident)
            j = state.factor
            status = run.table.factors[j]
            precision = (
                f"{fmt(row.per_factor[j], 3)} / {fmt(row.base_rate, 3)}"
                if row.kind == "event"
                else "-"
            )
            lines.append(
                f"| {run.who} {LAYOUT_SHORT[run.layout]} s{run.skip} | {short(row.name)} | {j} | "
                f"{state.state} | {fmt_signed(row.correlations[j], 3)} | {precision} | "
                f"{fmt(row.null_q95, 3)} | {fmt(row.swap_q95, 3)} | {fmt_p(row.p_values[j])} | "
                f"{fmt_p(row.shift_p_values[j])} | {fmt_signed(row.effects[j], 3)} "
                f"[{fmt_signed(row.effect_low[j], 3)}, {fmt_signed(row.effect_high[j], 3)}] | "
                f"{fmt(status.time_spearman)} | {fmt(status.stability, 3)} | "
                f"{fmt(status.start_fraction)} |"
            )
    if not seen:
        lines.append("| (none) |" + " |" * 13)
    lines.append("")
    return lines


# --- score claims --------------------------------------------------------------------------------


def score_label(s: ScoreAssociation) -> str:
    """``above``, ``BELOW`` (shouted, as in the report), ``time`` (only the shifts are beaten)
    or ``chance``."""
    verdict = s.verdict(LEVEL)
    if verdict == "below":
        return "BELOW"
    if verdict == "chance" and s.time_only:
        return "time"
    return verdict


def score_table(runs: Sequence[Run], names: Sequence[str], seeds: Sequence[int]) -> list[str]:
    lines = [
        f"## 2. The score's top-{TOP_K} per rollout vs each event",
        "",
        "Trained rows, cell: precision / base rate, null 5-95% under circular shifts (`s`) and "
        "under the episode swap (`w`), verdict: `above` / `BELOW` when the one-sided p-value "
        f"(the larger of the two nulls', Holm-adjusted over the table's events and both "
        f"directions) is <= {LEVEL}; `time` when only the shifts are beaten (Holm over the same "
        "family): the same steps of other episodes hit the event as often; else `chance`. "
        "Random rows: seeds with each verdict and the precision's min to max over the seeds. "
        "Surprise does not use the NMF, so its pool and step rows must agree.",
        "",
        "| config | " + " | ".join(short(n) for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for config, members in _by_config(runs).items():
        for run in (r for r in members if r.seed is None):
            by_name = {row.name: row for row in run.table.scores}
            cells = []
            for name in names:
                s = by_name.get(name)
                if s is None:
                    cells.append("n/a")
                    continue
                label = score_label(s)
                text = (
                    f"{fmt(s.precision, 3)}/{fmt(s.base_rate, 3)} "
                    f"s{fmt(s.null_q05, 3)}-{fmt(s.null_q95, 3)} "
                    f"w{fmt(s.swap_q05, 3)}-{fmt(s.swap_q95, 3)} {label}"
                )
                cells.append(f"**{text}**" if label in ("above", "BELOW") else text)
            lines.append(f"| {run.key} | " + " | ".join(cells) + " |")
        randoms = [r for r in members if r.seed is not None]
        if randoms:
            tables = [{row.name: row for row in r.table.scores} for r in randoms]
            cells = []
            for name in names:
                rows = [t[name] for t in tables if name in t]
                labels = [score_label(s) for s in rows]
                counts = ", ".join(
                    f"{label} {labels.count(label)}/{len(rows)}"
                    for label in ("above", "BELOW", "time")
                    if labels.count(label)
                )
                text = f"{counts or f'chance {len(rows)}/{len(rows)}'}; " + fmt_range(
                    [s.precision for s in rows], 3
                )
                claimed = any(label in ("above", "BELOW") for label in labels)
                cells.append(f"**{text}**" if claimed else text)
            lines.append(f"| rand x{len(randoms)} {config} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def score_detail(runs: Sequence[Run]) -> list[str]:
    lines = [
        "### Score verdicts and time findings in detail",
        "",
        "Every score row that is not `chance`. p above / below: both nulls, Holm over the "
        "family (events x directions); shift p: the circular shifts alone, Holm over the same "
        "family; effect: precision minus its mean under the episode swap, episode-bootstrap "
        "95% interval.",
        "",
        "| config | event | label | precision / base | swap 5-95% | p above / below | "
        "shift p above / below | effect [95%] | family |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    count = 0
    for run in runs:
        for s in run.table.scores:
            label = score_label(s)
            if label == "chance":
                continue
            count += 1
            lines.append(
                f"| {run.key} | {short(s.name)} | {label} | {fmt(s.precision, 3)} / "
                f"{fmt(s.base_rate, 3)} | {fmt(s.swap_q05, 3)}-{fmt(s.swap_q95, 3)} | "
                f"{fmt_p(s.p_above)} / {fmt_p(s.p_below)} | {fmt_p(s.shift_p_above)} / "
                f"{fmt_p(s.shift_p_below)} | {fmt_signed(s.effect, 3)} "
                f"[{fmt_signed(s.effect_low, 3)}, {fmt_signed(s.effect_high, 3)}] | "
                f"{s.family} |"
            )
    if not count:
        lines.append("| (none) |" + " |" * 8)
    lines.append("")
    return lines


# --- time and status -----------------------------------------------------------------------------


def analysed_steps(explanation: Explanation) -> np.ndarray:
    """``[n]`` the step index of each analysed observation (valid order)."""
    return np.nonzero(explanation.valid)[0].astype(np.float64)


def pick_times(run: Run) -> tuple[float, float, float, float]:
    """The picks' mean step, the analysed mean step, the share of picks in the first 3
    analysed steps, and the score's Spearman with the step."""
    e = run.explanation
    top = e.top_observations[:, :TOP_K]
    picked = top[top >= 0]
    steps = analysed_steps(e)
    first = picked < (run.skip + 3)
    scores = e.observation_scores[e.valid]
    return (
        float(picked.mean()),
        float(steps.mean()),
        float(first.mean()),
        rank_corr(scores, steps),
    )


def time_tables(runs: Sequence[Run], skips: Sequence[int]) -> list[str]:
    lines = [
        "## 3. Time control",
        "",
        "max(AUC, 1 - AUC) of the step index alone for each event over the analysed steps (the "
        "direction: `late` if later steps are more often events, `early` otherwise). It depends "
        "only on the rollouts and the burn-in, not on weights, layout or score. 0.5 = time says "
        "nothing; near 1 = the step alone tells the event apart. `row` (graded): Spearman of the "
        "chicken row with the step. The episode swap keeps all of this (same steps, other "
        "episodes); the circular shifts do not.",
        "",
    ]
    by_skip = {run.skip: run for run in runs if run.seed is None}
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
        "analysed steps. Random rows: the mean over the seeds (min to max of the share in the "
        "first 3 and of rho).",
        "",
        "| config | pick mean step | analysed mean step | picks in first 3 | score-step rho |",
        "|---|---|---|---|---|",
    ]
    for config, members in _by_config(runs).items():
        for run in (r for r in members if r.seed is None):
            pick, analysed, first, rho = pick_times(run)
            lines.append(f"| {run.key} | {pick:.1f} | {analysed:.1f} | {fmt(first)} | {fmt(rho)} |")
        randoms = [pick_times(r) for r in members if r.seed is not None]
        if randoms:
            pick, analysed, first, rho = (np.array(column) for column in zip(*randoms, strict=True))
            lines.append(
                f"| rand x{len(randoms)} {config} | {pick.mean():.1f} | {analysed.mean():.1f} | "
                f"{fmt(float(first.mean()))} ({fmt_range(list(first))}) | "
                f"{fmt(float(rho.mean()))} ({fmt_range(list(rho))}) |"
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
    seen: set[tuple[str, int | None, str, int]] = set()
    for run in runs:
        if run.fit in seen:
            continue
        seen.add(run.fit)
        factors = run.table.factors
        times = np.array([abs(f.time_spearman) for f in factors], dtype=np.float64)
        m = run.explanation.metrics
        lines.append(
            f"| {run.who} {LAYOUT_SHORT[run.layout]} s{run.skip} | "
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
    groups: dict[tuple[str, int | None, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.fit, []).append(run)
    for ident, members in groups.items():
        first = [r.to_json() for r in members[0].table.facts]
        for other in members[1:]:
            if [r.to_json() for r in other.table.facts] != first:
                notes.append(f"factor table differs between scores for {ident}")
    surprise = {
        (r.weights, r.seed, r.skip, r.layout): r.explanation.top_observations
        for r in runs
        if r.score == "surprise"
    }
    for (weights, seed, skip, layout), top in surprise.items():
        if layout == "pooled":
            other = surprise.get((weights, seed, skip, "per_step"))
            if other is not None and not np.array_equal(top, other):
                notes.append(f"surprise picks differ between layouts for {weights} {seed} s{skip}")
    return notes or [
        "Checked: the factor table is identical across the scores of each "
        "weights/seed/layout/skip, and surprise picks are identical across layouts (where both "
        "were run)."
    ]


def headline(runs: Sequence[Run], seeds: Sequence[int]) -> list[str]:
    """One line per config: the trained claims and labels next to the random seeds'."""
    lines = [
        "## Summary: what the trained weights claim that permuted weights do not",
        "",
        "Per config: the facts a trained factor claims (`time`: beyond the shifts only), the "
        "events the trained score's picks claim, and for each of them the number of "
        f"random-weights seeds (of {len(seeds)}) that claim the same.",
        "",
        "| config | trained factor claims (random seeds claiming) | trained score verdicts "
        "(random seeds with the same) | trained time-only (factor / score) |",
        "|---|---|---|---|",
    ]
    for config, members in _by_config(runs).items():
        trained = [r for r in members if r.seed is None]
        randoms = [r for r in members if r.seed is not None]
        for run in trained:
            facts, scores, times = [], [], []
            for row in run.table.facts:
                state = fact_state(row).state
                if state == "claim":
                    same = sum(
                        any(o.name == row.name and o.claim >= 0 for o in r.table.facts)
                        for r in randoms
                    )
                    facts.append(f"{short(row.name)} ({same}/{len(randoms)})")
                elif state == "time":
                    times.append(f"f:{short(row.name)}")
                elif state == "explained":
                    times.append(f"f:{short(row.name)} by {short(row.controlled_for)}")
            for s in run.table.scores:
                label = score_label(s)
                if label in ("above", "BELOW"):
                    same = sum(
                        any(score_label(o) == label for o in r.table.scores if o.name == s.name)
                        for r in randoms
                    )
                    scores.append(f"{short(s.name)} {label} ({same}/{len(randoms)})")
                elif label == "time":
                    times.append(f"s:{short(s.name)}")
            lines.append(
                f"| {config} | {', '.join(facts) or '-'} | {', '.join(scores) or '-'} | "
                f"{', '.join(times) or '-'} |"
            )
    lines.append("")
    return lines


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
    trajectories: list[tuple[str, int | None, Trajectory]] = [("trained", None, trained)]
    randomized = randomized_trajectories(agent, trained, args.random_seeds)
    trajectories += [
        ("random", seed, traj) for seed, traj in zip(args.random_seeds, randomized, strict=True)
    ]
    replay_s = time.perf_counter() - t0
    configs = args.configs or [(layout, score) for layout in LAYOUTS for score in SCORES]

    runs: list[Run] = []
    for weights, seed, trajectory in trajectories:
        for layout, score in configs:
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
                run = Run(weights, layout, score, skip, explanation, table, t1 - t0, t2 - t1, seed)
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
    every = len(configs) == len(LAYOUTS) * len(SCORES)
    grid = (
        "every layout x score"
        if every
        else "ONLY "
        + ", ".join(f"{layout} x {score}" for layout, score in configs)
        + " (the grid was cut to these)"
    )
    resolution = runs[0].table.resolution
    lines = [
        "# Which layout x score localises which Freeway events beyond both nulls",
        "",
        "Command: `OMP_NUM_THREADS=1 python research/measure_claims.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
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
        f"- configurations: {grid}; skip_steps {args.skip_steps}",
        f"- random-weights control, {len(args.random_seeds)} permutation seeds "
        f"({', '.join(map(str, args.random_seeds))}): every posterior-making layer of the agent "
        "permuted (`analysis/randomization.permute_parameters(agent, all LAYERS, seed)`, via "
        "`analysis/replays.randomized_replays`), replayed on the same observations and actions, "
        "posterior and prior logits rescaled to the trained spread (`match_scale`), as the "
        "sanity check builds them",
        f"- explain: rank {RANK}, top_k {TOP_K}, stability_refits {REFITS}, agent=None; "
        f"claims: {ClaimConfig()}",
        "- nulls: every p-value is the larger of the circular-shift and the episode-swap one "
        f"(`results/two_nulls.py`); episode-swap resolution {resolution:.3g}; `time` = beyond "
        "the shifts only (not a claim)",
        f"- wall time: rollouts {rollout_s:.1f} s, randomized replays {replay_s:.1f} s; explain "
        f"per config mean {np.mean(explain_times):.2f} s (min {min(explain_times):.2f}, max "
        f"{max(explain_times):.2f}); claims_table mean {np.mean(claims_times):.2f} s; total "
        f"{total_s:.0f} s for {len(runs)} explained configs",
        "- config names: `weights layout score s<skip>`; train = trained weights, r<seed> / rand "
        "xN = permuted weights; pool = pooled, step = per_step; act / rec / surp = activation / "
        "reconstruction / surprise",
        "- fact names: " + ", ".join(f"{short(n)} = {n}" for n in fact_names if short(n) != n),
        "",
    ]
    lines += headline(runs, args.random_seeds)
    lines += factor_table(runs, fact_names, args.random_seeds)
    lines += claims_detail(runs)
    lines += score_table(runs, event_names, args.random_seeds)
    lines += score_detail(runs)
    lines += time_tables(runs, args.skip_steps)
    lines += status_table(runs)
    lines += ["## Consistency checks", "", *(f"- {n}" for n in check_score_independence(runs))]
    lines += [
        "",
        "Per-config explain wall time (s): "
        + ", ".join(f"{r.key} {r.explain_s:.1f}" for r in runs),
    ]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out} in {total_s:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
