"""The page of ``dreamer-audit explain``: ``index.html`` of its output folder.

Built from the same HTML pieces as the pytest-html extras (:mod:`.html`): one metrics table (a
value on the wrong side of its meaning marked), the same claims tables, the same number
format. Every string from the explanation, the command line or the file system is escaped;
images are referenced by their names relative to the page.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.trustworthy import sample_label
from ..results.values import TrustMetrics
from .bundle import FACTORS_FILE, FILMSTRIP_FILE, IMAGINATION_FILE, TOP_STEPS_FILE, caption
from .html import WRONG_SIDE_MARK, metric_rows_html
from .numbers import format_number
from .tables import (
    curves_html,
    fact_table_html,
    factor_status_html,
    probe_table_html,
    randomization_html,
    score_table_html,
)

if TYPE_CHECKING:
    from ..results.claims import ClaimsTable
    from ..results.explanation import Explanation

__all__ = ["INDEX_FILE", "index_page", "write_index"]

INDEX_FILE = "index.html"

_STYLE = """body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
.figures { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: small; color: #555; }
.dreamer-audit-wrong-side { color: #b00; }"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _facts(explanation: Explanation, checkpoint: str) -> list[tuple[str, str]]:
    """The header: what was explained, from which checkpoint, with which settings."""
    e = explanation
    returns = [float(r) for r in e.returns]
    shown = (format_number(sum(returns) / len(returns), 3), format_number(min(returns), 6))
    return [
        ("checkpoint", checkpoint),
        ("game", f"{e.game} ({'POMDP' if e.pomdp else 'MDP'})"),
        ("rollouts", f"{e.episodes} x {e.steps} steps, seeds {e.seeds[0]}..{e.seeds[-1]}"),
        ("returns", f"mean {shown[0]}, min {shown[1]}, max {format_number(max(returns), 6)}"),
        (
            "explanation",
            f"score {e.config.score}, layout {e.config.layout}, rank {e.rank}, "
            f"top-k {e.config.top_k}, NMF {e.config.solver}/{e.config.init}",
        ),
        (
            "trust checks",
            _sample(e)
            if e.randomization  # the full stage runs whenever the agent was given
            else "checks 3, 4, 6 and 7 not run (explained without the agent)",
        ),
    ]


def _sample(e: Explanation) -> str:
    """Which episodes the replaying checks and the randomization stages ran on."""
    return sample_label(e.config.trust_sample(e.episodes), e.episodes)


def index_page(
    explanation: Explanation,
    rollout_images: Sequence[str],
    *,
    checkpoint: str = "",
    claims: ClaimsTable | None = None,
) -> str:
    """The page: what was explained, the trust metrics, the claims tables and the figures
    (``claims`` computed at the default level when not given).

    Args:
        explanation: the explanation shown.
        rollout_images: file names of the rollouts' full grids, in display order
            (``top-steps.png`` and ``factors.png`` are shown too).
        checkpoint: the checkpoint path shown in the header.
        claims: what the explanation claims.
    """
    e = explanation
    if claims is None:
        from ..results.claims import claims_table  # NumPy: only when not handed a table

        claims = claims_table(e)
    header = "\n".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in _facts(e, checkpoint)
    )
    metrics = metric_rows_html(
        (name, float(getattr(e.metrics, name))) for name in TrustMetrics.__dataclass_fields__
    )
    randomization = randomization_html(e.randomization, e.metrics.posterior_entropy)
    if randomization:  # its entropies are of the checks' episodes, the trained one of all
        randomization = f"<p>{_esc(_sample(e))}</p>\n{randomization}"

    def figure(name: str) -> str:
        text = _esc(caption(name, e))
        return (
            f'<figure><img src="{_esc(name)}" alt="{text}">'
            f"<figcaption>{_esc(name)}: {text}</figcaption></figure>"
        )

    imagined = (
        (
            ("h2", "The world model's imagination", figure(IMAGINATION_FILE)),
            ("h3", "What it imagines, against what happened", figure(FILMSTRIP_FILE)),
        )
        if e.imagination is not None
        else ()
    )
    sections = (
        ("h2", "The most important steps", figure(TOP_STEPS_FILE)),
        *imagined,
        ("h2", "Factors", figure(FACTORS_FILE)),
        (
            "h3",
            "What each factor's observations coincide with",
            fact_table_html(claims.facts) or "<p>No valid steps.</p>",
        ),
        ("h3", "Which factors may claim", factor_status_html(claims.factors)),
        ("h3", "The score's top observations against each event", score_table_html(claims.scores)),
        ("h3", "Model parameter randomization", randomization or "<p>Not run (no agent).</p>"),
        (
            "h3",
            "What the latents know beyond their controls (linear probes)",
            probe_table_html(e.probes) or "<p>Not run (--probes true runs them).</p>",
        ),
        (
            "h3",
            "Deletion and insertion curves of every head",
            curves_html(e.curves) or "<p>Not run (--curves true draws them).</p>",
        ),
    )
    body = "\n".join(f"<{h}>{_esc(title)}</{h}>\n{content}" for h, title, content in sections)
    figures = "\n".join(figure(name) for name in rollout_images)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{_esc(f"dreamer-audit: {e.game}")}</title>
<style>
{_STYLE}
</style></head><body>
<h1>{_esc(f"Explanation of {e.game}")}</h1>
<table>{header}</table>
<h2>Trust metrics</h2>
<p>{WRONG_SIDE_MARK}: a value on the wrong side of its meaning.</p>
<table><tr><th>metric</th><th>value</th><th>meaning</th></tr>
{metrics}</table>
<p>Arrays: <a href="explanation.npz">explanation.npz</a>,
summary: <a href="summary.json">summary.json</a>.</p>
{body}
<h2>Rollouts</h2>
<div class="figures">{figures}</div>
</body></html>
"""


def write_index(
    directory: str | os.PathLike[str],
    explanation: Explanation,
    rollout_images: Sequence[str],
    *,
    checkpoint: str = "",
    claims: ClaimsTable | None = None,
) -> Path:
    """Write :func:`index_page` to ``directory/index.html``; returns its path."""
    target = Path(directory) / INDEX_FILE
    target.write_text(
        index_page(explanation, rollout_images, checkpoint=checkpoint, claims=claims),
        encoding="utf-8",
    )
    return target
