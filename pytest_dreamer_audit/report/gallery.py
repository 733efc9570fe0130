"""The factor gallery: each NMF factor's prototype next to the observations that excite it.

Composed like the rollout figures (:mod:`.render`): NumPy blocks and cached-glyph text on one
:class:`~.canvas.Canvas`.
"""

from __future__ import annotations

import os

import numpy as np

from ..results.claims import ClaimsTable, claims_table
from ..results.config import ClaimConfig
from ..results.explanation import Explanation
from ..results.semantics import FactAssociation, factor_highlights
from ..results.values import FactorStatus
from .blocks import (
    FRAME_PX,
    MARGIN_PX,
    belief_rgb,
    colormap,
    observation_rgb,
    observed_channels,
    scaled,
    tiles,
)
from .canvas import Canvas, to_uint8

__all__ = ["render_factor_gallery"]

_WHITE = np.ones(3)
_BAR = np.array([0x43, 0x63, 0xD8]) / 255
_PROBS_CMAP, _PROBS_GAMMA = "magma", 0.5  # as the rollout grid's posterior column
_GAP_PX, _RIGHT_PX = 14, 16
_LABEL_BAND_PX = 32  # room for the labels under each example


def _strongest_categorical(explanation: Explanation, step: int, episode: int, factor: int) -> int:
    """Pooled layout: the categorical whose row excites ``factor`` most at (step, episode)."""
    e = explanation
    rows = np.flatnonzero((e.row_step == step) & (e.row_episode == episode))
    if not len(rows):
        return -1
    return int(e.row_categorical[rows[np.argmax(e.activations[rows, factor])]])


def _bar_blocks(heights: np.ndarray, bar: int = 7) -> np.ndarray:
    """Bar charts as pixels: ``[r, K]`` heights in [0, 1] -> ``[r, 60, K * bar, 3]`` RGB."""
    classes = heights.shape[1]
    level = np.arange(60, 0, -1)[None, :, None]  # each pixel row's height, top row highest
    filled = level <= np.maximum(np.round(heights * 58), 0)[:, None, :] + 1  # [r, 60, K]
    filled = np.repeat(filled, bar, axis=2) & (np.arange(classes * bar) % bar < bar - 2)
    return np.where(filled[..., None], _BAR, np.where(level[..., None] == 1, 0.6, 1.0))


def _highlights(associations: tuple[FactAssociation, ...], status: FactorStatus) -> str:
    """Short lines under a factor's name: why it makes no claims, or the event and the graded
    fact it is the significant claim of (precision vs the null's 95% quantile)."""
    if not status.claimable:
        return status.label.replace(" (", "\n(")
    factor = status.factor
    event, graded = factor_highlights(list(associations), factor)
    lines = []
    if event is not None:
        name = event.name.replace("executed_action=", "ran ")
        lines.append(f"{name}\n{event.per_factor[factor]:.0%} vs null {event.null_q95:.0%}")
    if graded is not None:
        lines.append(
            f"{graded.name}\nrho {graded.per_factor[factor]:+.2f} vs {graded.null_q95:.2f}"
        )
    if status.tie_fraction > 0:
        lines.append(f"{status.tie_fraction:.0%} of picks tied")
    return "\n".join(lines) or "no claim beats\nits null"


def render_factor_gallery(
    explanation: Explanation,
    *,
    path: str | os.PathLike[str] | None = None,
    claims: ClaimsTable | None = None,
) -> bytes:
    """One row per NMF factor: its prototype, then its top-k dataset examples.

    The prototype ``prototypes[j]`` is drawn as bars over the K classes (pooled layout) or as a
    ``C x K`` heatmap (per-step layout; magma, square-root scale); both are scaled so that 1 is
    the largest prototype entry. Each example is the observation
    ``factor_examples[j, i] = (step, episode)``, labelled with its step, episode, activation
    ``factor_activations[t, b, j]`` and, pooled, the categorical whose row excited the factor
    most. Under each factor's name: why it makes no claims (unstable, episode start), or the
    game event and the graded fact it is the significant claim of, each next to its null's 95%
    quantile (``semantics.factor_highlights``), and the share of its picks that were tied.
    With ``config.decoded``, a column before the examples shows each prototype decoded through
    the ObsDecoder in the context of its best example (``analysis/decoding.py``).

    Args:
        explanation: what to draw. path: also write the PNG there.
        claims: the explanation's :func:`~pytest_dreamer_audit.results.claims.claims_table`
            when the caller has it already (computed here otherwise).

    Returns:
        The PNG file's bytes: ``96 + r x 104`` pixels high at :data:`~.canvas.DPI` for r factors.
    """
    e = explanation
    rank, k = e.factor_examples.shape[:2]
    categoricals, classes = e.posterior_probs.shape[2:]
    pooled = e.prototypes.shape[1] == classes and e.config.layout == "pooled"
    pairs = e.factor_examples.reshape(-1, 2)
    present = pairs[:, 0] >= 0
    obs = np.zeros((rank * k, *e.observations.shape[2:]), dtype=bool)
    obs[present] = e.observations[pairs[present, 0], pairs[present, 1]]
    white = np.tile(_WHITE, (rank * k, 1))
    examples = tiles(
        scaled(to_uint8(observation_rgb(obs, observed_channels(e))), 60), white, _LABEL_BAND_PX
    )
    examples = np.pad(examples, ((0, 0), (0, 0), (10, 10), (0, 0)), constant_values=255)
    pitch, tile = examples.shape[1:3]  # the padding: room for the labels
    grid = (
        examples.reshape(rank, k, pitch, tile, 3).transpose(0, 2, 1, 3, 4).reshape(-1, k * tile, 3)
    )

    header, left = 96, 120
    peak = float(e.prototypes.max()) or 1.0
    if pooled:
        blocks, title = _bar_blocks(e.prototypes / peak), f"prototype (classes 0-{classes - 1})"
    else:
        values = e.prototypes.reshape(rank, categoricals, classes) / peak
        blocks, title = colormap(_PROBS_CMAP, values, _PROBS_GAMMA), "prototype [C x K]"
    proto = tiles(scaled(to_uint8(blocks), 60), np.tile(_WHITE, (rank, 1)), _LABEL_BAND_PX)
    proto = proto.reshape(-1, proto.shape[2], 3)
    proto_px = proto.shape[1]
    decoded = None  # the prototypes decoded through the ObsDecoder, when computed
    if e.factor_decoded.shape[0]:
        views = tiles(
            scaled(to_uint8(belief_rgb(e.factor_decoded, observed_channels(e))), 60),
            np.tile(_WHITE, (rank, 1)),
            _LABEL_BAND_PX,
        )
        views = np.pad(views, ((0, 0), (0, 0), (10, 10), (0, 0)), constant_values=255)
        decoded = views.reshape(-1, tile, 3)
    extra = tile + _GAP_PX if decoded is not None else 0
    width = max(left + proto_px + 2 * _GAP_PX + extra + k * tile + _RIGHT_PX, 600)
    canvas = Canvas(width, header + rank * pitch)
    table = claims or claims_table(e)
    table_k = next((row.k for row in table.facts if row.kind == "event"), ClaimConfig().k)
    table_level = table.facts[0].level if table.facts else ClaimConfig().level
    title_text = (
        f"{e.game} ({'POMDP' if e.pomdp else 'MDP'}): {rank} factors, layout {e.config.layout}, "
        f"score {e.config.score}\neach factor's prototype and the {k} observations that excite "
        "it most\n(activation: maximum over the observation's NMF rows)\nunder each name: what "
        f"its activation goes with beyond all three nulls (level {table_level:g}; precision of "
        f"its top {table_k} shown), or why it claims nothing"
    )
    canvas.text(15, 8, title_text, 1.0, va="top", linespacing=1.35)
    x_examples = left + proto_px + 2 * _GAP_PX + extra
    if decoded is not None:
        x_decoded = x_examples - extra
        canvas.image(decoded, x_decoded, header)
        canvas.text(
            x_decoded + tile / 2, header - 3, "decoded", ha="center", va="bottom", linespacing=1.3
        )
    canvas.text(
        x_examples + k * tile / 2,
        header - 3,
        f"top {k} dataset examples",
        ha="center",
        va="bottom",
        linespacing=1.3,
    )
    canvas.image(proto, left, header)
    canvas.text(left + proto_px / 2, header - 3, title, ha="center", va="bottom", linespacing=1.3)
    canvas.image(grid, x_examples, header)
    for j in range(rank):
        best = int(e.prototypes[j].argmax())
        where = f"class {best}" if pooled else f"cat {best // classes},\nclass {best % classes}"
        name = f"factor {j}\npeak: {where}"
        canvas.text(12, header + pitch * j + 6, name, 0.5, va="top")
        below = 10 + 13 * (name.count("\n") + 1)  # 13 px per line of the name's font
        claim = _highlights(table.facts, table.factors[j]) if table.factors else ""
        canvas.text(12, header + pitch * j + below, claim, -1.0, va="top")
        y = header + pitch * (j + 1) - _LABEL_BAND_PX - 3
        if pooled:  # the class axis: first and last class under the bars
            for index in (0, classes - 1):
                x = left + MARGIN_PX + FRAME_PX + 7 * index + 2.5
                canvas.text(x, y, str(index), -1.0, ha="center", va="top")
        for i in range(k):
            t, b = (int(v) for v in e.factor_examples[j, i])
            if t < 0:
                continue
            label = f"t {t}, ep {b}\nact {e.factor_activations[t, b, j]:.2f}"
            if pooled:
                label += f", cat {_strongest_categorical(e, t, b, j)}"
            canvas.text(x_examples + tile * (i + 0.5), y, label, -1.0, ha="center", va="top")
    return canvas.png(path)
