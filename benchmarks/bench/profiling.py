"""``--profile``: cProfile summaries of each slow piece (no timings are recorded)."""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

import torch

from pytest_dreamer_audit.analysis.factorize import NMFConfig, fit_nmf
from pytest_dreamer_audit.report.render import render_rollout

from .agent import AgentSource, rollout
from .end_to_end import end_to_end
from .render import notebook_rollout, small_explanation
from .rollouts import games_only, one_at_a_time
from .timing import Clock

TOP_FUNCTIONS = 18


def profile(source: AgentSource, clock: Clock, base: torch.Tensor) -> str:
    """Top functions by own time and by cumulative time of each piece, after one warm-up.

    ``base`` is the 64k-row NMF matrix (:func:`bench.nmf_data.posterior_rows`).
    """
    explanation = small_explanation(source)
    work: list[tuple[str, Callable[[], Any]]] = [
        ("batched rollouts 64 x 50", lambda: rollout(source.agent, 64)),
        ("notebook loop 16 x 50", lambda: one_at_a_time(source.agent, 16)),
        ("games only 64 x 50", lambda: games_only(64)),
        (
            'fit_nmf solver="mu" 64k rows',
            lambda: fit_nmf(base, NMFConfig(solver="mu", tol=0.0)),
        ),
        (
            'fit_nmf solver="torchnmf" 64k rows',
            lambda: fit_nmf(base, NMFConfig(solver="torchnmf", tol=0.0)),
        ),
        ("render_rollout (package)", lambda: render_rollout(explanation, 0)),
        ("notebook figure", lambda: notebook_rollout(explanation, 0)),
        ("end to end 64 x 50", lambda: end_to_end(source, clock, 64)),
    ]
    out = io.StringIO()
    for name, job in work:
        job()  # warm-up
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.runcall(job)
        clock.sync()
        elapsed = time.perf_counter() - start
        out.write(f"\n{'=' * 100}\n{name}: {elapsed:.3f} s under cProfile\n{'=' * 100}\n")
        for order in ("tottime", "cumulative"):
            stats = pstats.Stats(profiler, stream=out)
            stats.strip_dirs().sort_stats(order).print_stats(TOP_FUNCTIONS)
    return out.getvalue()
