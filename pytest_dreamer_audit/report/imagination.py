"""Pictures of the world model's imagination: a filmstrip and the error-vs-horizon plot.

Torch-free, drawn on a :class:`~.canvas.Canvas` like the other figures (no pyplot). The plot
needs only the :class:`~pytest_dreamer_audit.results.imagination.ImaginationTable`; the
filmstrip needs the imagined frames of one episode
(``analysis.imagination.imagined_frames``), which explanations do not store.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from ..errors import ConfigError
from ..results.imagination import ImaginationTable
from .blocks import belief_rgb, observation_rgb, scaled
from .canvas import Canvas

__all__ = ["SERIES", "render_filmstrip", "render_imagination_plot"]

SERIES: tuple[tuple[str, str, str], ...] = (
    ("model", "model_nll", "#1f77b4"),
    ("persistence", "persistence_nll", "#ff7f0e"),
    ("randomized dynamics", "randomized_nll", "#7f7f7f"),
    ("ceiling (posterior)", "ceiling_nll", "#2ca02c"),
)
"""(label, field of ``PredictionError``, colour) of each line of the plot."""
_MISS = np.array([0x00, 0xFF, 0xFF]) / 255  # cyan: Freeway's cars are red
_CELL_PX = 6  # pixels per observation cell in the filmstrip


def _line(
    canvas: Canvas, start: tuple[float, float], end: tuple[float, float], colour: str
) -> None:
    """A 2-pixel line from ``start`` to ``end`` (pixel coordinates), as stamped squares."""
    (x0, y0), (x1, y1) = start, end
    count = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    for f in np.linspace(0.0, 1.0, count):
        canvas.fill(round(x0 + f * (x1 - x0)), round(y0 + f * (y1 - y0)), 2, 2, colour)


def render_imagination_plot(
    table: ImaginationTable, channel: int | None = None, *, width: int = 520, height: int = 260
) -> Canvas:
    """Error against horizon: the model's per-cell negative log-likelihood of ``o_{t+h}`` next
    to persistence, the randomized dynamics and the ceiling, each horizon's p-value against
    persistence under the x axis.

    Raises:
        ConfigError: ``channel`` has no rows (the message lists the channels).
    """
    rows = [table.error(h, channel) for h in table.horizons]
    left, right, top, bottom = 52, 30, 28, 58
    canvas = Canvas(width, height)
    name = rows[0].channel_name
    canvas.text(width / 2, 6, f"open-loop prediction error ({name})", 1, ha="center", va="top")
    values = np.array([[getattr(row, field) for _, field, _ in SERIES] for row in rows])
    peak = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    peak = peak * 1.1 if peak > 0 else 1.0
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = min(table.horizons), max(table.horizons)

    def x_of(h: int) -> float:
        return left + (plot_w / 2 if high == low else (h - low) / (high - low) * plot_w)

    def y_of(v: float) -> float:
        return top + plot_h * (1 - v / peak)

    canvas.fill(left, top, 1, plot_h, "#000000")
    canvas.fill(left, top + plot_h, plot_w, 1, "#000000")
    for tick in np.linspace(0.0, peak, 5):
        canvas.fill(left - 4, round(y_of(tick)), 4, 1, "#000000")
        canvas.text(left - 6, y_of(tick), f"{tick:.3g}", -1.5, ha="right", va="center")
    canvas.text(8, top - 8, "nats / cell", -1.5, va="bottom")
    for row in rows:
        x = x_of(row.horizon)
        canvas.fill(round(x), top + plot_h, 1, 4, "#000000")
        canvas.text(x, top + plot_h + 6, f"h={row.horizon}", -1.5, ha="center", va="top")
        canvas.text(x, top + plot_h + 19, f"p={row.p_persistence:.2g}", -2, ha="center", va="top")
    for j, (label, _, colour) in enumerate(SERIES):
        points = [
            (x_of(row.horizon), y_of(v))
            for row, v in zip(rows, values[:, j], strict=True)
            if np.isfinite(v)
        ]
        for a, b in pairwise(points):
            _line(canvas, a, b, colour)
        for x, y in points:
            canvas.fill(round(x) - 3, round(y) - 3, 7, 7, colour)
        lx = 10 + j * (width - 20) // len(SERIES)
        canvas.fill(lx, height - 14, 8, 8, colour)
        canvas.text(lx + 11, height - 10, label, -2, va="center")
    return canvas


def render_filmstrip(
    observations: np.ndarray,
    imagined: np.ndarray,
    horizons: Sequence[int],
    channels: tuple[int, ...],
    starts: Sequence[int],
) -> Canvas:
    """One episode's filmstrip: per column a start step ``t``; the top row the real ``o_t``,
    then for each horizon the real ``o_{t+h}`` and, under it, the frame imagined for it from
    ``t`` (the decoder's values as colour weights), cells whose thresholded prediction (> 0.5)
    disagrees with the real frame outlined in cyan.

    Args:
        observations: ``[L, channels, 10, 10]`` bool, the episode's real frames.
        imagined: ``[len(horizons), L, channels, 10, 10]`` float from
            ``analysis.imagination.imagined_frames``.
        horizons: the horizons of ``imagined``. channels: each channel's MinAtar index.
        starts: the start steps to show, each with ``t + max(horizons) < L``.
    """
    steps = observations.shape[0]
    if imagined.shape[:2] != (len(horizons), steps):
        raise ConfigError(
            f"imagined frames of shape {imagined.shape} do not match {len(horizons)} horizons "
            f"x {steps} steps"
        )
    bad = [t for t in starts if not 0 <= t < steps - max(horizons)]
    if bad or not starts:
        raise ConfigError(
            f"start steps {bad or list(starts)} cannot show every horizon: choose starts in 0 to "
            f"{steps - max(horizons) - 1}"
        )
    side = 10 * _CELL_PX
    label_w, gap = 96, 6
    rows = 1 + 2 * len(horizons)
    canvas = Canvas(label_w + len(starts) * (side + gap) + gap, 22 + rows * (side + gap))
    labels = ["real o_t"] + [
        text for h in horizons for text in (f"real o_t+{h}", f"imagined, h={h}")
    ]
    for r, label in enumerate(labels):
        canvas.text(6, 22 + r * (side + gap) + side / 2, label, -1, va="center")
    for c, t in enumerate(starts):
        x = label_w + c * (side + gap)
        canvas.text(x + side / 2, 6, f"t={t}", -1, ha="center", va="top")
        frames = [observation_rgb(observations[t : t + 1], channels)[0]]
        for i, h in enumerate(horizons):
            real = observations[t + h]
            prediction = imagined[i, t + h]
            frames.append(observation_rgb(real[None], channels)[0])
            picture = scaled(belief_rgb(prediction[None], channels), side)[0]
            wrong = ((prediction > 0.5) != real.astype(bool)).any(axis=0)
            picture = _outline(picture, wrong)
            frames.append(picture)
        for r, frame in enumerate(frames):
            block = frame if frame.shape[0] == side else scaled(frame[None], side)[0]
            canvas.image(block, x, 22 + r * (side + gap))
    return canvas


def _outline(picture: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """``picture`` (``[10 s, 10 s, 3]``) with a cyan 1-pixel border inside each wrong cell."""
    s = picture.shape[0] // wrong.shape[0]
    cells = np.repeat(np.repeat(wrong, s, axis=0), s, axis=1)
    edge = (np.arange(picture.shape[0]) % s == 0) | (np.arange(picture.shape[0]) % s == s - 1)
    border = cells & (edge[:, None] | edge[None, :])
    out = picture.copy()
    out[border] = _MISS
    return out
