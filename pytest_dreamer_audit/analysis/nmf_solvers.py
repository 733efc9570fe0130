"""The plain-torch NMF solvers: multiplicative updates and accelerated HALS, both fused passes.

Both fit ``X ~= A D`` (``X [N, M]``, ``A [N, r]``, ``D [r, M]``, Frobenius loss) in place, from
the init they are given, on X's device, and return the iterations they ran. Both hold X and A
transposed in blocks of rows (``[M, n]``, ``[r, n]``): BLAS handles these short-and-wide
products 2-4x faster than tall-and-skinny ones, and a block stays in cache between its products.
One pass over the blocks per iteration updates A with the current D and accumulates the
``A^T X`` and ``A^T A`` that the next D update needs; the loss
``||X||^2 - 2 <X D^T, A> + <A^T A, D D^T>`` comes from the same products, so checking it costs
no extra pass over X.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..results.config import NMFConfig

__all__ = ["block_rows", "fit_hals", "fit_mu", "norm_sq"]

_EPS = 1e-12


def block_rows(device: torch.device) -> int:
    """Rows per block of a fused pass: cache-sized on a CPU, large on a GPU."""
    return 16_384 if device.type == "cpu" else 1 << 21


def norm_sq(values: Tensor) -> float:
    """``||values||_F^2``, summed in float64 without a float64 copy of ``values`` (2.9 against
    6.4 ms for a copy at 64k x 20 on one core)."""
    return float(torch.linalg.vector_norm(values, dtype=torch.float64)) ** 2


def _blocks(
    matrix: Tensor, activations: Tensor, square: Callable[[Tensor], float]
) -> tuple[list[Tensor], list[Tensor], float]:
    """X and A in transposed blocks of rows, and ``sum(square(block))`` of X's taken as each
    block is made, while it is in cache (a second pass over a million rows was 0.34 s of a
    fit's fixed cost, issue 33; the same sum, in the same order)."""
    rows = block_rows(matrix.device)
    x_blocks: list[Tensor] = []
    squares: list[float] = []
    for block in torch.split(matrix, rows):
        x_blocks.append(block.T.contiguous())  # [M, n]
        squares.append(square(x_blocks[-1]))
    a_blocks = [block.T.contiguous() for block in torch.split(activations, rows)]  # [r, n] each
    return x_blocks, a_blocks, sum(squares)


def _unblock(activations: Tensor, a_blocks: list[Tensor]) -> None:
    """Copy the ``[r, n]`` blocks back into ``activations [N, r]``, one block at a time."""
    for part, ab in zip(torch.split(activations, a_blocks[0].shape[1]), a_blocks, strict=True):
        part.copy_(ab.T)


def _error(total_sq: float, cross: Tensor, ata: Tensor, ddt: Tensor) -> float:
    """``||X - A D||_F`` from the Gram products (clamped: float rounding can go below zero)."""
    return math.sqrt(max(total_sq - 2 * float(cross) + float((ata * ddt).sum()), 0.0))


def fit_mu(matrix: Tensor, activations: Tensor, prototypes: Tensor, config: NMFConfig) -> int:
    """Lee & Seung multiplicative updates for the Frobenius loss, in torchnmf's order.

    Iteration i: ``D <- D * (A^T X) / (A^T A D)``, then ``A <- A * (X D^T) / (A D D^T)``, the loss
    checked every 10 iterations with torchnmf's criterion (improvement over the 10 iterations
    below ``tol`` times the initial loss).

    Shape:
        matrix ``[N, M]``, activations ``[N, r]``, prototypes ``[r, M]`` (updated in place)
    """
    x_blocks, a_blocks, total_sq = _blocks(matrix, activations, lambda xb: float((xb * xb).sum()))
    d = prototypes
    rank, width = d.shape

    def accumulate(d: Tensor, update: bool) -> tuple[Tensor, Tensor, Tensor]:
        """One pass: optionally update A with ``d``; return A^T X, A^T A and <X D^T, A>.

        Nothing is read back to the host here: on a GPU the pass runs without a sync, and only
        the loss checks (every 10 iterations) wait for the device.
        """
        ata = d.new_zeros(rank, rank)
        atx = d.new_zeros(rank, width)
        cross = d.new_zeros(())
        ddt = d @ d.T
        for xb, ab in zip(x_blocks, a_blocks, strict=True):
            dx = d @ xb  # [r, n]
            if update:
                ab.mul_(dx / (ddt @ ab).clamp_(min=_EPS))
            cross += (dx * ab).sum()
            atx += ab @ xb.T
            ata += ab @ ab.T
        return atx, ata, cross

    atx, ata, cross = accumulate(d, update=False)
    initial = previous = _error(total_sq, cross, ata, d @ d.T)
    iterations = config.max_iter
    for iteration in range(config.max_iter):
        d.mul_(atx / (ata @ d).clamp_(min=_EPS))
        atx, ata, cross = accumulate(d, update=True)
        if iteration % 10 == 9:
            current = _error(total_sq, cross, ata, d @ d.T)
            if (previous - current) / max(initial, _EPS) < config.tol:
                iterations = iteration + 1
                break
            previous = current
    _unblock(activations, a_blocks)
    return iterations


_PROTOTYPE_SWEEPS = 20
"""At most this many HALS sweeps over D per iteration: D is ``[r, M]``, so a sweep costs a fixed
quarter of a millisecond of dispatch, while the pass that feeds it reads all of X."""
_ROWS_PER_PROTOTYPE_SWEEP = 4_096
"""And at most one sweep per this many rows (two at least): Gillis & Glineur's rule of spending
about half a pass on inner sweeps, for a pass that costs about as much as a sweep per 2,000
rows on one CPU core."""
_PROTOTYPE_STOP = 1e-2
"""Stop D's sweeps once a sweep moves D by less than this fraction of the first sweep's move
(Gillis & Glineur 2012)."""
_ACTIVATION_SWEEPS = 2
"""HALS sweeps over a block's activations per pass, while the block is in cache: a sweep costs
``r^2`` flop per row against ``4 M r`` for the products that feed it. One is not enough from
NNDSVDa, whose activations are far from the best ones for its prototypes (relative error 1.66
on the bundled agent's posteriors): on jittered copies of those (1.28M rows) one sweep per
pass zeroes activations that take long to recover (relative error 0.576 after 24 iterations,
against 0.562 after 6 with two sweeps); two also gain more per second than one on nearly
uniform posteriors."""


def _inverse_diagonal(gram: Tensor) -> Tensor:
    """``1 / gram_kk``, and 0 where a factor is dead (all-zero row or column): its update is
    skipped instead of dividing by zero, so it can come back when the other factor moves."""
    diagonal = gram.diagonal()
    alive = diagonal > 1e-12 * diagonal.max()  # a tensor comparison: no host sync on a GPU
    return torch.where(alive, 1.0 / diagonal.clamp(min=_EPS * _EPS), 0.0)


def _update_prototypes(d: Tensor, atx: Tensor, ata: Tensor, sweeps: int) -> None:
    """HALS sweeps over the rows of D, in place, in NumPy float64 on the CPU: the Gram products
    are ``[r, M]`` and ``[r, r]``, so every op costs its dispatch (a microsecond in NumPy, several
    in torch, a kernel launch on a GPU) and nothing else.

    Row k: ``D_k <- max(0, D_k + (A^T X - A^T A D)_k / (A^T A)_kk)``, k = 1..r in turn.
    """
    work = d.detach().to("cpu", torch.float64).numpy()
    products, gram = atx.cpu().numpy(), ata.cpu().numpy()
    inverse = _inverse_diagonal(ata.cpu()).numpy()
    first = None
    for _ in range(sweeps):
        moved = 0.0
        for k in range(work.shape[0]):
            new = np.maximum(work[k] + (products[k] - gram[k] @ work) * inverse[k], 0.0)
            moved += float(np.dot(new - work[k], new - work[k]))
            work[k] = new
        first = moved if first is None else first
        if moved <= _PROTOTYPE_STOP**2 * first:
            break
    d.copy_(torch.from_numpy(work))


def fit_hals(matrix: Tensor, activations: Tensor, prototypes: Tensor, config: NMFConfig) -> int:
    """Accelerated HALS (Cichocki & Phan 2009; Gillis & Glineur 2012) for the Frobenius loss.

    Iteration i: one pass over the blocks of rows in which each block's activations get rank-one
    sweeps over their r columns, ``A_k <- max(0, A_k + (X D^T - A D D^T)_k / (D D^T)_kk)``, while
    the block is in cache (:data:`_ACTIVATION_SWEEPS`), accumulating ``A^T X`` and ``A^T A``;
    then rank-one sweeps over the rows of D from those (cheap: D is ``[r, M]``). Activations
    first: NNDSVDa's prototypes are closer to a good fit than its activations. The loss after
    the D update is ``||X||^2 - 2 <D, A^T X> + <A^T A, D D^T>``: checked after every iteration
    at no cost, and the fit stops when an iteration lowered it by less than ``tol`` times its
    previous value (``tol = 0``: never; the loss from Gram products is too coarse to tell a flat
    step from a rounding error).

    Shape:
        matrix ``[N, M]``, activations ``[N, r]``, prototypes ``[r, M]`` (updated in place)
    """
    x_blocks, a_blocks, total_sq = _blocks(matrix, activations, norm_sq)
    d = prototypes
    rank, width = d.shape

    def accumulate() -> tuple[Tensor, Tensor]:
        """One pass: sweep every block's activations with D; return A^T X and A^T A (float64)."""
        ata = d.new_zeros(rank, rank, dtype=torch.float64)
        atx = d.new_zeros(rank, width, dtype=torch.float64)
        ddt = d @ d.T
        inverse = _inverse_diagonal(ddt)
        for xb, ab in zip(x_blocks, a_blocks, strict=True):
            dx = d @ xb  # [r, n]
            for _ in range(_ACTIVATION_SWEEPS):
                for k in range(rank):
                    step = torch.addmv(dx[k], ab.T, ddt[k], alpha=-1)  # (X D^T - A D D^T)_k
                    ab[k].addcmul_(step, inverse[k]).clamp_(min=0)
            # Float64 products: in float32 their rounding depends on the rows' order, and the
            # stop then lands up to 14 iterations apart for the same rows in another order
            # (scores 8e-3 apart on a small per-step fit, ``tests/test_explain.py``); in float64
            # the fit is the same to 1e-5, for ~1.3-1.6x the time of an iteration.
            a64 = ab.double()
            atx += a64 @ xb.T.double()
            ata += a64 @ a64.T
        return atx, ata

    prototype_sweeps = min(
        _PROTOTYPE_SWEEPS, max(2, int(matrix.shape[0]) // _ROWS_PER_PROTOTYPE_SWEEP)
    )
    previous = math.inf
    iterations = config.max_iter
    for iteration in range(config.max_iter):
        atx, ata = accumulate()
        _update_prototypes(d, atx, ata, prototype_sweeps)
        d64 = d.double()
        current = _error(total_sq, (d64 * atx).sum(), ata, d64 @ d64.T)
        if config.tol > 0 and previous - current < config.tol * previous:
            iterations = iteration + 1
            break
        previous = current
    _unblock(activations, a_blocks)
    return iterations
