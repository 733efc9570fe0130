"""Measure every number the example suite pins, for one checkpoint at several rollout seeds.

``examples/test_freeway_audit.py`` (and the README's audit example) justify each threshold by
the value measured on the bundled checkpoint, its null and its spread over rollout seeds. This
script prints those values in one markdown report, computed through the plugin's own cache
(``AuditCache``: the same rollouts and explanation the fixtures build), so that re-pinning the
suite after retraining the checkpoint is a matter of reading one file:

    OMP_NUM_THREADS=1 python research/pin_suite.py examples/checkpoints/freeway_pomdp.pth \\
        --seeds 0 1000 --episodes 16 32 --out /tmp/pins.md

Per (seed, episodes): mean return and action fractions; the trust metrics (NMF error and
explained variance, stability, randomized-weights and confidence Spearman, posterior entropies,
deletion ratio); the score's table (precision of the top-k picks at each event, base rate, both
nulls' 5-95% ranges, the effect over other episodes with its 95% interval, and the p-values
under both nulls and under circular shifts alone); each fact's best claimable factor with its
corrected nulls ("time" where only the circular shift is beaten). The random-weights control
of the claims is ``research/measure_claims.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.plugin.audit import AuditCache, AuditResult
from pytest_dreamer_audit.settings import AuditSettings

METRICS = (
    "relative_error",
    "explained_variance",
    "stability_mean_cosine",
    "stability_min_cosine",
    "sanity_spearman",
    "confidence_spearman",
    "posterior_entropy",
    "sanity_entropy",
    "deletion_topk",
    "deletion_random",
    "deletion_ratio",
)


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def behaviour_lines(result: AuditResult) -> list[str]:
    """Mean return (with its spread over episodes) and the action fractions on valid steps."""
    e = result.explanation
    chosen = e.actions[e.valid]
    fractions = ", ".join(
        f"{name} {float((chosen == i).mean()):.1%}" for i, name in enumerate(e.action_names)
    )
    return [
        f"- mean return {float(e.returns.mean()):.3f} (std {float(e.returns.std()):.3f} over "
        f"{e.episodes} episodes of up to {e.steps} steps)",
        f"- actions on {int(e.valid.sum())} valid steps: {fractions}",
    ]


def metric_lines(result: AuditResult) -> list[str]:
    """The trust metrics the assertions test."""
    m = result.explanation.metrics
    return [f"- {name} {_number(float(getattr(m, name)))}" for name in METRICS]


def score_table(result: AuditResult) -> list[str]:
    """The score's top-k picks at each event, against both nulls (circular shifts, other
    episodes at the same steps), with the effect over other episodes and its 95% interval; p
    Holm-adjusted over the table, "shift p" what the circular shift alone gives."""
    rows = [
        "| event | precision | base rate | shifts 5-95% | other episodes 5-95% | effect [95%] | "
        "p above | p below | shift p above | shift p below | verdict |",
        "|---|---:|---:|---|---|---|---:|---:|---:|---:|---|",
    ]
    for s in result.claims.scores:
        verdict = "time" if s.time_only else s.verdict()
        rows.append(
            f"| {s.name} | {s.precision:.3f} | {s.base_rate:.3f} | {s.null_q05:.3f}-"
            f"{s.null_q95:.3f} | {s.swap_q05:.3f}-{s.swap_q95:.3f} | {s.effect:+.3f} "
            f"[{s.effect_low:+.3f}, {s.effect_high:+.3f}] | {s.p_above:.3f} | {s.p_below:.3f} | "
            f"{s.shift_p_above:.3f} | {s.shift_p_below:.3f} | {verdict} |"
        )
    return rows


def factor_table(result: AuditResult) -> list[str]:
    """Each fact's best factor (any) and its claim (a claimable factor beyond the corrected
    null), with the null's 95% quantile of the best claimable factor."""
    rows = [
        "| fact | kind | best factor: value | claim: value (p) | effect [95%] | shift p | "
        "null q95: shifts / other episodes | base rate |",
        "|---|---|---|---|---|---:|---|---:|",
    ]
    for f in result.claims.facts:
        best = f.best_factor
        value = f"f{best}: {f.per_factor[best]:+.3f}" if best >= 0 else "-"
        claim = f.claim
        timed = [j for j, yes in enumerate(f.time_only) if yes]
        if claim >= 0:
            said = f"f{claim}: {f.per_factor[claim]:+.3f} (p {f.p_values[claim]:.3f})"
        else:
            said = f"time (f{timed[0]})" if timed else "none"
        shown = claim if claim >= 0 else best
        effect = (
            f"{f.effects[shown]:+.3f} [{f.effect_low[shown]:+.3f}, {f.effect_high[shown]:+.3f}]"
            if shown >= 0
            else "-"
        )
        shift_p = _number(f.shift_p_values[shown]) if shown >= 0 else "nan"
        rows.append(
            f"| {f.name} | {f.kind} | {value} | {said} | {effect} | {shift_p} | "
            f"{_number(f.null_q95)} / {_number(f.swap_q95)} | {_number(f.base_rate)} |"
        )
    unusable = [f"f{s.factor} {s.label}" for s in result.claims.factors if not s.claimable]
    rows.append("")
    rows.append("Factors that make no claims: " + (", ".join(unusable) or "none"))
    return rows


def report(base: AuditSettings, seeds: Sequence[int], episodes: Sequence[int], root: Path) -> str:
    """The markdown report of the audits of ``base`` at every (seed, episodes)."""
    cache = AuditCache(root)
    lines = [
        f"# Pinned values of `{base.checkpoint}`",
        "",
        f"- machine: `{platform.machine()}`, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s)",
        f"- settings, except the seed and the episodes: {dataclasses.asdict(base)}",
    ]
    for count in episodes:
        for seed in seeds:
            settings = dataclasses.replace(base, seed=seed, episodes=count)
            start = time.perf_counter()
            result = cache.explanation(settings)
            lines += [
                "",
                f"## seed {seed}, {count} episodes x {settings.steps} steps "
                f"({time.perf_counter() - start:.1f} s)",
                "",
                *behaviour_lines(result),
                *metric_lines(result),
                "",
                *score_table(result),
                "",
                *factor_table(result),
            ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1000])
    parser.add_argument("--episodes", type=int, nargs="+", default=[16])
    parser.add_argument("--rank", type=int, default=AuditSettings.rank, help="NMF rank r")
    parser.add_argument("--score", default=AuditSettings.score, help="the observation score")
    parser.add_argument("--out", type=Path, help="write the markdown here (default: stdout)")
    args = parser.parse_args(argv)
    if any(count < 1 for count in args.episodes):
        raise ConfigError(f"--episodes must all be at least 1, got {args.episodes}")
    with tempfile.TemporaryDirectory(prefix="pin-suite-") as scratch:
        text = report(
            AuditSettings(checkpoint=args.checkpoint, rank=args.rank, score=args.score),
            args.seeds,
            args.episodes,
            Path(scratch),
        )
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
