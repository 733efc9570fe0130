"""The NMF suite's matrices and measures: posterior rows, jittered copies, error, floors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pytest_dreamer_audit.analysis.factorize import flatten_posteriors
from pytest_dreamer_audit.model.agent import DreamerAgent

from .agent import rollout

RANK, CLASSES, NMF_ITERATIONS = 10, 20, 200
BASE_ROWS = 64_000  # 64 episodes x 50 steps x 20 categoricals: one pooled NMF matrix


def posterior_rows(agent: DreamerAgent, device: torch.device) -> torch.Tensor:
    """The pooled NMF matrix of a 64 x 50 rollout.

    Shape:
        ``[BASE_ROWS, CLASSES]``: 64,000 rows of 20 class probabilities, on ``device``.
    """
    trajectory = rollout(agent, 64)
    rows = flatten_posteriors(trajectory.posterior_probs, trajectory.valid, "pooled").matrix
    if rows.shape[0] != BASE_ROWS:  # episodes that ended early: tile to the nominal size
        rows = rows.repeat(math.ceil(BASE_ROWS / rows.shape[0]), 1)[:BASE_ROWS]
    return rows.to(device).contiguous()


def scaled_rows(base: torch.Tensor, factor: int, seed: int = 0) -> torch.Tensor:
    """``factor`` copies of ``base``, each entry times ``exp(0.1 z)``, rows renormalised to 1.

    Shape:
        ``[factor * N, M]`` from ``[N, M]``, on ``base``'s device.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    out = base.cpu().repeat(factor, 1)
    out.mul_(torch.randn(out.shape, generator=generator).mul_(0.1).exp_())
    out.div_(out.sum(dim=1, keepdim=True))
    return out.to(base.device)


def relative_error(x: torch.Tensor, a: torch.Tensor, d: torch.Tensor) -> float:
    """``||X - A D||_F / ||X||_F``, accumulated in float64, in row chunks.

    Shape:
        x ``[N, M]``, a ``[N, r]``, d ``[r, M]``.
    """
    error = total = 0.0
    for start in range(0, x.shape[0], 1 << 20):
        xs, as_ = x[start : start + (1 << 20)], a[start : start + (1 << 20)]
        residual = xs - as_ @ d
        error += float((residual.double() ** 2).sum())
        total += float((xs.double() ** 2).sum())
    return math.sqrt(error / total)


@dataclass(frozen=True)
class NMFFloor:
    """Lower bounds of an MU fit of ``[rows, CLASSES]`` at rank ``RANK`` (float32) here."""

    bytes_per_iteration_fused: int
    """Read X once, read A once, write A once."""
    bytes_per_iteration_as_written: int
    """The package's ``_fit_mu``: X twice, 13 A-sized passes."""
    flop_per_iteration: int
    memory_floor_fused_s: float
    memory_floor_as_written_s: float
    compute_floor_s: float
    formula: str


def nmf_floor(rows: int, iterations: int, bandwidth: float, flop_rate: float) -> NMFFloor:
    """The floors of ``iterations`` iterations at ``bandwidth`` bytes/s and ``flop_rate`` FLOP/s."""
    m, r = CLASSES, RANK
    fused = 4 * rows * (m + 2 * r)
    as_written = 4 * rows * (2 * m + 13 * r)
    flops = 2 * rows * r * (2 * m + 2 * r)  # A^T X, X D^T, A^T A, A (D D^T)
    return NMFFloor(
        bytes_per_iteration_fused=fused,
        bytes_per_iteration_as_written=as_written,
        flop_per_iteration=flops,
        memory_floor_fused_s=iterations * fused / bandwidth,
        memory_floor_as_written_s=iterations * as_written / bandwidth,
        compute_floor_s=iterations * flops / flop_rate,
        formula="fused: 4 B x N x (M + 2r); as written: 4 B x N x (2M + 13r); "
        "flop: 2 N r (2M + 2r); M = 20, r = 10",
    )
