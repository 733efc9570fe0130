"""Suite 3, rendering one 50-step rollout to PNG: the notebook's figure vs ``render_rollout``.

The notebook's approach is reproduced with the object API (it used pyplot): one figure with
``L x 4`` subplots, one ``imshow`` per axes (observation, posterior probabilities, sampled
one-hot state, activity on the sampled classes), axes left with their default ticks, the action,
entropy and score as axes titles, saved as PNG. The factor gallery (given its claims table, as
``report/bundle.py`` calls it, so that only drawing is timed) and the compact figure of the top
steps (``render_top_steps``, the first 4 rollouts) are timed for reference.

The package's figures are composed in NumPy (``report/canvas.py``); their first call in a
process also renders the glyphs it uses, which ``Timing.warmup_s`` shows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.report.canvas import PNG_LEVEL
from pytest_dreamer_audit.report.render import (
    observation_rgb,
    render_factor_gallery,
    render_rollout,
    render_top_steps,
)
from pytest_dreamer_audit.results.claims import claims_table
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation

from .agent import AgentSource, rollout
from .codec import OMIT_NONE
from .timing import Clock, Timing


@dataclass(frozen=True)
class RenderSuite:
    steps: int
    """Valid steps of the rollout drawn."""
    categoricals_x_classes: tuple[int, ...]
    package_render_rollout: Timing
    notebook_figure: Timing
    package_factor_gallery: Timing
    speedup: float
    """Notebook figure over ``render_rollout`` (best times)."""
    package_png_bytes: int
    notebook_png_bytes: int
    package_top_steps: Timing | None = field(default=None, metadata=OMIT_NONE)
    """``render_top_steps`` of the first 4 rollouts (absent in files from before it existed)."""
    top_steps_png_bytes: int | None = field(default=None, metadata=OMIT_NONE)
    gallery_png_bytes: int | None = field(default=None, metadata=OMIT_NONE)
    png_zlib_level: int | None = field(default=None, metadata=OMIT_NONE)
    """``report.canvas.PNG_LEVEL`` of the package's files."""


def notebook_rollout(explanation: Explanation, episode: int) -> bytes:
    """The notebook's figure of ``episode``: ``L x 4`` axes, one imshow and one title per axes."""
    e, b = explanation, episode
    steps = np.flatnonzero(e.valid[:, b])
    figure = Figure(figsize=(12, 3 * len(steps)), dpi=72)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(steps), 4, squeeze=False)
    observations = observation_rgb(e.observations[steps, b], tuple(range(e.observations.shape[2])))
    for row, t in enumerate(steps):
        probs = e.posterior_probs[t, b]
        entropy = float(-(probs * np.log(np.clip(probs, 1e-12, None))).sum())
        one_hot = np.zeros_like(probs)
        one_hot[np.arange(len(probs)), e.stoch_classes[t, b]] = 1.0
        activity = one_hot * e.step_scores[t, b][:, None]
        axes[row, 0].imshow(observations[row])
        axes[row, 0].set_title(f"t={t} action {e.action_names[e.actions[t, b]]}")
        axes[row, 1].imshow(probs)
        axes[row, 1].set_title(f"entropy {entropy:.2f}")
        axes[row, 2].imshow(one_hot)
        axes[row, 2].set_title("stoch")
        axes[row, 3].imshow(activity)
        axes[row, 3].set_title(f"score {e.observation_scores[t, b]:.2f}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def small_explanation(source: AgentSource) -> Explanation:
    """A 16 x 50 explanation of the agent, rank 10, no stability refits."""
    return explain(rollout(source.agent, 16), ExplainConfig(stability_refits=0))


def bench_render(source: AgentSource, repeats: int) -> RenderSuite:
    """The longest episode of :func:`small_explanation`, drawn both ways (always on the CPU)."""
    explanation = small_explanation(source)
    episode = int(np.argmax(explanation.valid.sum(axis=0)))
    cpu = Clock(torch.device("cpu"))  # rendering is NumPy + matplotlib
    ours, ours_png = cpu.best_of(repeats, lambda: render_rollout(explanation, episode))
    notebook, notebook_png = cpu.best_of(repeats, lambda: notebook_rollout(explanation, episode))
    claims = claims_table(explanation)
    gallery, gallery_png = cpu.best_of(
        repeats, lambda: render_factor_gallery(explanation, claims=claims)
    )
    top, top_png = cpu.best_of(repeats, lambda: render_top_steps(explanation))
    first = ours.warmup_s if ours.warmup_s is not None else float("nan")
    print(
        f"  render: package {ours.best_s:.3f} s ({len(ours_png):,} B; first call {first:.3f} s), "
        f"notebook {notebook.best_s:.3f} s, gallery {gallery.best_s:.3f} s "
        f"({len(gallery_png):,} B), top steps {top.best_s:.3f} s ({len(top_png):,} B)",
        flush=True,
    )
    return RenderSuite(
        steps=int(explanation.valid[:, episode].sum()),
        categoricals_x_classes=tuple(explanation.posterior_probs.shape[2:]),
        package_render_rollout=ours,
        notebook_figure=notebook,
        package_factor_gallery=gallery,
        speedup=notebook.best_s / ours.best_s,
        package_png_bytes=len(ours_png),
        notebook_png_bytes=len(notebook_png),
        package_top_steps=top,
        top_steps_png_bytes=len(top_png),
        gallery_png_bytes=len(gallery_png),
        png_zlib_level=PNG_LEVEL,
    )
