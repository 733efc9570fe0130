"""Rendering speed: ``render.render_rollout`` vs the source notebook's 4-axes-per-step figure.

Run: ``python benchmarks/render_speed.py [--steps 50] [--repeats 3]``.
Both renderers draw the same 50-step rollout of one explanation (a tiny agent with the reference
RSSM split, 20 categoricals x 20 classes, NMF rank 10) to PNG bytes in the same process; each is
timed as the best of ``repeats`` runs after one warm-up. Results go to
``benchmarks/results/render-<hostname>.json`` and a line on stdout.

The baseline reproduces the notebook's approach with the object API (it used pyplot): one
figure with ``L x 4`` subplots, one ``imshow`` per axes (observation, posterior probabilities,
sampled one-hot state, activity on the sampled classes), axes left with their default ticks, the
action, entropy and score as axes titles, saved as PNG.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.report.render import observation_rgb, render_rollout
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """Minimum wall time of ``repeats`` runs after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def notebook_rollout(explanation: Explanation, episode: int) -> bytes:
    """The notebook's figure: ``L x 4`` axes, one imshow and one title per axes."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the machine is shared; timings should not depend on its load

    agent = tiny_agent("freeway", seed=0, categoricals=20, classes=20)
    trajectory = run_rollouts(agent, "freeway", episodes=4, steps=args.steps, seed=0)
    explanation = explain(trajectory, ExplainConfig(rank=10, stability_refits=0))
    episode = int(np.argmax(explanation.valid.sum(axis=0)))
    rows = int(explanation.valid[:, episode].sum())

    ours = best_of(args.repeats, lambda: render_rollout(explanation, episode))
    notebook = best_of(args.repeats, lambda: notebook_rollout(explanation, episode))
    host = socket.gethostname()
    result = {
        "machine": host,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "matplotlib": matplotlib.__version__,
        "torch_threads": torch.get_num_threads(),
        "steps": rows,
        "categoricals_x_classes": list(explanation.posterior_probs.shape[2:]),
        "rank": explanation.rank,
        "repeats": args.repeats,
        "render_rollout_s": ours,
        "notebook_s": notebook,
        "speedup": notebook / ours,
        "render_rollout_png_bytes": len(render_rollout(explanation, episode)),
        "notebook_png_bytes": len(notebook_rollout(explanation, episode)),
    }
    out = Path(__file__).parent / "results" / f"render-{host}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{rows}-step rollout on {host} ({result['cpu']}, {os.cpu_count()} cores, "
        f"matplotlib {matplotlib.__version__}): render_rollout {ours:.3f} s, "
        f"notebook {notebook:.3f} s, {notebook / ours:.1f}x faster\nwritten: {out}"
    )


if __name__ == "__main__":
    main()
