"""The claims tables as HTML: game facts against factors, which factors may claim, the score's
top observations against events, the randomization stages, the fact probes, the deletion and
insertion curves. Shown by the pytest-html extras (:mod:`.html`) and the ``dreamer-audit
explain`` page (:mod:`.page`) alike.

Standard library only (the plugin imports it on every pytest run); every string is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

from ..results.values import (
    CONTROLS,
    LATENTS,
    CurveSet,
    FactAssociation,
    FactorStatus,
    ProbeRow,
    RandomizationStage,
    ScoreAssociation,
)
from .numbers import format_number, format_percent

__all__ = [
    "curves_html",
    "fact_table_html",
    "factor_status_html",
    "probe_table_html",
    "randomization_html",
    "score_table_html",
]


def _fact_cell(value: float, event: bool, claimed: bool, p: float, rho: float) -> str:
    if math.isnan(value):
        return "<td>n/a</td>"
    text = f"{value:.0%}" if event else f"{value:+.2f}"
    tested = f"rank correlation {rho:+.2f}, " if event and not math.isnan(rho) else ""
    where = "" if math.isnan(p) else f' title="{tested}adjusted p = {format_number(p, 3)}"'
    return f"<td{where}><b>{text}</b></td>" if claimed else f"<td{where}>{text}</td>"


def fact_table_html(associations: Iterable[FactAssociation]) -> str:
    """An HTML table of game facts against factors, with what chance gives beside each row.

    Events show each factor's precision at its top picks and the base rate; the claim is
    tested on the rank-biserial correlation of the factor's whole activation with the event
    (in the cell's tooltip), and the null column gives the 95% quantiles of the best
    factor's under both nulls (circular shifts / other episodes at the same steps). Graded
    facts show each factor's Spearman and both nulls' 95% quantiles of the best ``|rho|``.
    A value is bold only where it is the row's claim (:attr:`FactAssociation.claim`: beyond
    both nulls after maxT and Holm correction); its adjusted p-value is in the cell's tooltip
    and the claim's in the last column with its effect over other episodes and the effect's
    episode-bootstrap 95% interval. A row that beats only the circular shifts says "time" (the
    same steps of other episodes show it too). Every string is escaped. Empty without rows.
    """
    rows = list(associations)
    if not rows:
        return ""
    width = max(len(row.per_factor) for row in rows)
    header = "".join(f"<th>factor {j}</th>" for j in range(width))
    lines = []
    for row in rows:
        event = row.kind == "event"
        claim = row.claim
        p_values = row.p_values or (math.nan,) * len(row.per_factor)
        cells = "".join(
            _fact_cell(v, event, j == claim, p_values[j], row.correlations[j])
            for j, v in enumerate(row.per_factor)
        )
        measure = f"precision of top-{row.k}" if event else "Spearman"
        chance = f"{row.base_rate:.1%}" if event and not math.isnan(row.base_rate) else ""
        if math.isnan(row.null_q95):
            null = "no factor may claim"
        elif event:
            null = f"rho {row.null_q95:+.2f} / {format_number(row.swap_q95)}"
        else:
            null = f"|rho| {row.null_q95:.2f} / {format_number(row.swap_q95)}"
        verdict = _fact_verdict(row)
        lines.append(
            f"<tr><td>{html.escape(row.name)}</td><td>{html.escape(measure)}</td>"
            f"<td>{html.escape(chance)}</td><td>{html.escape(null)}</td>{cells}"
            f"<td>{html.escape(verdict)}</td></tr>"
        )
    level = rows[0].level
    return (
        '<table class="dreamer-audit-facts"><tr><th>fact</th><th>measure</th>'
        "<th>base rate</th><th>null 95%: shifts / other episodes</th>"
        f"{header}<th>claim at level {level:g} (effect over other episodes, 95% interval)</th>"
        "</tr>"
        f"{''.join(lines)}</table>"
    )


def _effect(value: float, low: float, high: float, percent: bool) -> str:
    if math.isnan(value):
        return "effect n/a"
    shown = [f"{v:+.0%}" if percent else f"{v:+.2f}" for v in (value, low, high)]
    return f"{shown[0]} [{shown[1]}, {shown[2]}]"


def _fact_verdict(row: FactAssociation) -> str:
    """The last column: the claim with its effect, "time", or no claim."""
    claim = row.claim
    if claim >= 0:
        effect = _effect(row.effects[claim], row.effect_low[claim], row.effect_high[claim], False)
        return f"factor {claim}, p = {format_number(row.p_values[claim], 3)}, {effect}"
    other = [j for j, yes in enumerate(row.explained_by_other) if yes]
    if other:
        return (
            f"{row.controlled_for}: factor {other[0]} beats the shifts and other episodes, not "
            f"shuffles within {row.controlled_for}, which may explain it"
        )
    timed = [j for j, yes in enumerate(row.time_only) if yes]
    if timed:
        return f"time: factor {timed[0]} beats circular shifts only (other episodes show it too)"
    return "none beats chance"


def factor_status_html(statuses: Iterable[FactorStatus]) -> str:
    """An HTML table of each factor's stability, time correlation, start and tie fractions, and
    whether it may claim anything (``FactorStatus``). Empty without rows."""
    rows = list(statuses)
    if not rows:
        return ""
    lines = [
        f"<tr><td>factor {s.factor}</td><td>{html.escape(format_number(s.stability))}</td>"
        f"<td>{html.escape(format_number(s.time_spearman))}</td>"
        f"<td>{format_percent(s.start_fraction)}</td><td>{format_percent(s.tie_fraction)}</td>"
        f"<td>{html.escape(s.label or 'may claim')}</td></tr>"
        for s in rows
    ]
    return (
        '<table class="dreamer-audit-factors"><tr><th>factor</th>'
        "<th>stability (worst matched cosine)</th><th>Spearman with the step</th>"
        "<th>picks in the first steps</th><th>picks tied</th><th>claims</th></tr>"
        f"{''.join(lines)}</table>"
    )


def _score_chance(row: ScoreAssociation) -> str:
    """A score row without a verdict: another fact's, the step's ("time"), or chance."""
    if row.explained_by_other:
        return (
            f"{row.controlled_for}: beyond the shifts and other episodes, not beyond shuffles "
            f"within {row.controlled_for}, which may explain it"
        )
    return "time (other episodes' same steps show it too)" if row.time_only else "chance"


def score_table_html(scores: Iterable[ScoreAssociation]) -> str:
    """An HTML table of the score's top observations per rollout against each event: precision,
    base rate, both nulls' 5-95% ranges (circular shifts, other episodes at the same steps),
    the effect over other episodes with its episode-bootstrap 95% interval, and whether the
    picks hit the event more or less often than chance (beyond both nulls, Holm-corrected over
    every event and direction at the row's level, ``--dreamer-significance``, and beyond
    shuffles of the event within the other recorded fact that best goes with the score where
    the first two leave a claim possible; "time" where only the circular shifts are beaten, the
    other fact's name where it explains the rest). Empty without rows."""
    rows = list(scores)
    if not rows:
        return ""
    lines = []
    for s in rows:
        verdict = {
            "above": f"above chance (p = {format_number(s.p_above, 3)})",
            "below": f"BELOW chance (p = {format_number(s.p_below, 3)})",
            "chance": _score_chance(s),
        }[s.verdict()]
        lines.append(
            f"<tr><td>{html.escape(s.name)}</td><td>{format_percent(s.precision)}</td>"
            f"<td>{format_percent(s.base_rate)}</td>"
            f"<td>{format_percent(s.null_q05)}-{format_percent(s.null_q95)}</td>"
            f"<td>{format_percent(s.swap_q05)}-{format_percent(s.swap_q95)}</td>"
            f"<td>{_effect(s.effect, s.effect_low, s.effect_high, True)}</td>"
            f"<td>{html.escape(verdict)}</td></tr>"
        )
    k = rows[0].k
    return (
        '<table class="dreamer-audit-scores"><tr><th>event</th>'
        f"<th>precision of each rollout's top-{k}</th><th>base rate</th>"
        "<th>null 5-95%: circular shifts</th><th>null 5-95%: other episodes</th>"
        "<th>effect over other episodes (95% interval)</th>"
        f"<th>verdict (beyond every null, Holm over the {rows[0].family} tests of the table, "
        f"at {rows[0].level:g})</th></tr>{''.join(lines)}</table>"
    )


def randomization_html(stages: Iterable[RandomizationStage], trained_entropy: float) -> str:
    """An HTML table of the model parameter randomization stages: which layers were randomized,
    the randomized posteriors' entropy next to the trained one's, and how much of the
    explanation survived (Spearman of the observation scores, matched prototype cosine).
    Empty without stages."""
    rows = list(stages)
    if not rows:
        return ""
    lines = [
        f"<tr><td>{html.escape(s.kind)}</td><td>{html.escape(s.layers)}</td>"
        f"<td>{html.escape(format_number(s.entropy))}</td>"
        f"<td>{html.escape(format_number(s.observation_spearman))}</td>"
        f"<td>{html.escape(format_number(s.prototype_cosine))}</td></tr>"
        for s in rows
    ]
    return (
        '<table class="dreamer-audit-randomization"><tr><th>stage</th><th>layers randomized</th>'
        f"<th>posterior entropy (trained {html.escape(format_number(trained_entropy))})</th>"
        "<th>score Spearman with trained</th><th>prototype cosine with trained</th></tr>"
        f"{''.join(lines)}</table>"
    )


def probe_table_html(rows: Iterable[ProbeRow]) -> str:
    """An HTML table of the fact probes: per fact, the out-of-fold AUC (events) or R^2 (graded)
    from each trained input and each control, and whether the best trained input beats the best
    control. Empty without rows."""
    table = list(rows)
    if not table:
        return ""
    names = [*LATENTS, *CONTROLS]
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    lines = []
    for row in table:
        (latent, best), (control, rival) = row.best_latent, row.best_control
        if math.isnan(best) or math.isnan(rival):
            verdict = "undefined"
        elif best > rival:
            verdict = f"{latent} beats {control} by {best - rival:.3f}"
        else:
            verdict = f"{control} (a control) is as good or better"
        scores = dict(row.scores)
        cells = "".join(
            f"<td>{html.escape(format_number(scores.get(name, math.nan)))}</td>" for name in names
        )
        measure = "AUC" if row.kind == "event" else "R^2"
        lines.append(
            f"<tr><td>{html.escape(row.fact)}</td><td>{measure}</td>{cells}"
            f"<td>{html.escape(verdict)}</td></tr>"
        )
    return (
        '<table class="dreamer-audit-probes"><tr><th>fact</th><th>measure</th>'
        f"{header}<th>verdict</th></tr>{''.join(lines)}</table>"
    )


def curves_html(curves: Iterable[CurveSet]) -> str:
    """An HTML table of the deletion and insertion curves: per head, each curve's area over the
    random orders' and the curve itself at a few fractions (score / random). Empty without
    curves."""
    rows = list(curves)
    if not rows:
        return ""
    lines = []
    for c in rows:
        points = "; ".join(
            f"{f:.0%}: {format_number(s)} / {format_number(r)}"
            for f, s, r in zip(c.fractions, c.score_curve, c.random_curve, strict=True)
            if f in (0.1, 0.3, 0.5)
        )
        lines.append(
            f"<tr><td>{html.escape(c.head)}</td><td>{html.escape(c.kind)}</td>"
            f"<td>{html.escape(format_number(c.area))}</td><td>{html.escape(points)}</td></tr>"
        )
    return (
        '<table class="dreamer-audit-curves"><tr><th>head</th><th>curve</th>'
        "<th>area over random (&gt; 0: the score beats chance)</th>"
        "<th>output change, score / random</th></tr>"
        f"{''.join(lines)}</table>"
    )
