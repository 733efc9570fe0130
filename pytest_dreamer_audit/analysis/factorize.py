"""NMF of RSSM posteriors: flatten to a non-negative matrix, initialise, fit, normalise.

The only module that imports torchnmf. Two layouts of the posterior probabilities
``P [L, B, C, K]`` (softmax of the logits, never the logits themselves):

* ``"pooled"`` (the notebook's): one row per valid (step, episode, categorical), ``X [N*C, K]``;
  all categoricals share the r prototypes.
* ``"per_step"``: one row per valid (step, episode), ``X [N, C*K]``; classes of different
  categoricals stay distinct, which respects that class 3 of categorical 0 and class 3 of
  categorical 7 mean unrelated things.

``X ~= A @ D`` with activations ``A [rows, r] >= 0`` and prototypes ``D [r, M] >= 0``. NMF is
scale-ambiguous (``A D = (A S)(S^-1 D)``), so after fitting every prototype row is scaled to unit L2
norm and the activations absorb the scale: activation magnitudes are then comparable across
factors, fits and seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError, FactorizationError
from ..results.config import LAYOUTS, SOLVERS, Layout, NMFConfig, Solver, check_rank
from .nmf_solvers import block_rows, fit_hals, fit_mu, norm_sq

__all__ = [
    "LAYOUTS",
    "SOLVERS",
    "Factorization",
    "FlatRows",
    "NMFConfig",
    "fit_nmf",
    "flatten_posteriors",
    "nndsvda_init",
    "random_init",
    "unflatten_rows",
]

_EPS = 1e-12


@dataclass(frozen=True)
class FlatRows:
    """A flattened matrix and where each row came from.

    Attributes:
        matrix: ``[rows, M]`` float32, non-negative.
        step, episode: ``[rows]`` int32, the (t, b) of each row.
        categorical: ``[rows]`` int32, the categorical of each row (pooled), or None (per step).
        (int32: at a million rows each index takes 4 MB, not 8; the saved explanation keeps
        them as they are.)
        shape: ``(L, B, C, K)`` of the probabilities that were flattened.
    """

    matrix: Tensor
    step: Tensor
    episode: Tensor
    categorical: Tensor | None
    shape: tuple[int, int, int, int]

    @property
    def layout(self) -> Layout:
        return "pooled" if self.categorical is not None else "per_step"


@dataclass(frozen=True)
class Factorization:
    """``X ~= activations @ prototypes`` with unit-norm prototype rows.

    Attributes:
        activations: ``[rows, r]`` float32 >= 0 (A).
        prototypes: ``[r, M]`` float32 >= 0, each row of unit L2 norm (D).
        iterations: iterations the solver ran.
        relative_error: ``||X - A D||_F / ||X||_F``.
        explained_variance: ``1 - ||X - A D||_F^2 / ||X - mean_rows(X)||_F^2``.
    """

    activations: Tensor
    prototypes: Tensor
    iterations: int
    relative_error: float
    explained_variance: float


def _check_probabilities(probs: Tensor) -> None:
    if probs.dim() != 4:
        raise FactorizationError(
            f"posterior probabilities must be [L, B, C, K], got shape {tuple(probs.shape)}"
        )
    if not bool(torch.isfinite(probs).all()):
        raise FactorizationError(
            "posterior probabilities contain NaN or infinity; NMF needs finite input (check the "
            "agent's weights and the rollout)"
        )
    if bool((probs < 0).any()):
        raise FactorizationError(
            f"posterior probabilities contain negative values (min {float(probs.min()):.3g}); "
            "NMF is undefined there. Pass softmax(logits), never raw logits"
        )


def flatten_posteriors(probs: Tensor, valid: Tensor, layout: Layout) -> FlatRows:
    """Flatten the valid steps of ``probs`` into NMF rows.

    Shape:
        - probs: ``[L, B, C, K]`` probabilities; valid: ``[L, B]`` bool
        - output rows: ``[N*C, K]`` (pooled) or ``[N, C*K]`` (per step), N = valid steps, in
          time-major order (step, then episode, then categorical)
    """
    _check_probabilities(probs)
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if tuple(valid.shape) != tuple(probs.shape[:2]):
        raise FactorizationError(
            f"valid mask {tuple(valid.shape)} does not match probabilities {tuple(probs.shape)}"
        )
    steps, episodes, cats, classes = (int(s) for s in probs.shape)
    where = torch.nonzero(valid.to(torch.bool))
    if where.shape[0] == 0:
        raise FactorizationError("no valid steps to factorize: every episode ended before step 0")
    t, b = where[:, 0].to(torch.int32), where[:, 1].to(torch.int32)
    picked = probs[t, b].to(torch.float32)
    if layout == "per_step":
        return FlatRows(
            picked.reshape(-1, cats * classes), t, b, None, (steps, episodes, cats, classes)
        )
    c = torch.arange(cats, dtype=torch.int32, device=probs.device)
    return FlatRows(
        picked.reshape(-1, classes),
        t.repeat_interleave(cats),
        b.repeat_interleave(cats),
        c.repeat(t.shape[0]),
        (steps, episodes, cats, classes),
    )


def unflatten_rows(values: Tensor, rows: FlatRows, fill: float = 0.0) -> Tensor:
    """Scatter per-row values back to ``[L, B, C, ...]`` (pooled) or ``[L, B, ...]`` (per step).

    Positions of invalid steps hold ``fill``.
    """
    steps, episodes, cats, _ = rows.shape
    tail = tuple(values.shape[1:])
    if rows.categorical is None:
        out = values.new_full((steps, episodes, *tail), fill)
        out[rows.step, rows.episode] = values
    else:
        out = values.new_full((steps, episodes, cats, *tail), fill)
        out[rows.step, rows.episode, rows.categorical] = values
    return out


def nndsvda_init(matrix: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """NNDSVD (Boutsidis & Gallopoulos 2008) with zeros filled by the data mean ("a" variant).

    Deterministic and scaled to the data; the SVD comes from the small ``M x M`` Gram matrix.
    The ``[N, rank]`` side is built a cache-sized block of rows at a time, in two passes (its
    column norms, then the activations): at a million rows its whole-matrix float64
    temporaries were 0.46 s and four times the activations' memory (issue 33). Multiplicative
    updates cannot move exact zeros, hence the fill.

    Shape:
        - matrix: ``[N, M]``; output: ``(A [N, rank], D [rank, M])``
    """
    gram = (matrix.T @ matrix).to(torch.float64)
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    order = torch.argsort(eigenvalues, descending=True)[:rank]
    singular = eigenvalues[order].clamp(min=0).sqrt()
    right = eigenvectors[:, order]  # [M, rank]
    right32, divisor = right.to(matrix.dtype), singular.clamp(min=_EPS)
    blocks = torch.split(matrix, block_rows(matrix.device))

    def left_of(block: Tensor) -> Tensor:
        # float32 product, cast after: a float64 copy of X would cost 8 bytes per entry.
        return (block @ right32).to(torch.float64) / divisor

    positive_sq = right.new_zeros(right.shape[1])
    negative_sq = right.new_zeros(right.shape[1])
    for block in blocks:
        left = left_of(block)
        positive_sq += left.clamp(min=0).square().sum(dim=0)
        negative_sq += left.clamp(max=0).square().sum(dim=0)
    # Per component keep the sign pattern with more mass; the first is all one sign already.
    # The [N, rank] side is built only for the kept sign (negation is exact, so this is the
    # same u as building both and choosing).
    lpn, lnn = positive_sq.sqrt(), negative_sq.sqrt()
    rp, rn = right.clamp(min=0), (-right).clamp(min=0)
    rpn, rnn = rp.norm(dim=0), rn.norm(dim=0)
    positive = (lpn * rpn) >= (lnn * rnn)
    sign = torch.where(positive, 1.0, -1.0).to(torch.float64)
    u_norm = torch.where(positive, lpn, lnn).clamp(min=_EPS)
    v = torch.where(positive, rp / rpn.clamp(min=_EPS), rn / rnn.clamp(min=_EPS))
    sigma = torch.where(positive, lpn * rpn, lnn * rnn)
    scale = (singular * sigma).sqrt()
    mean = matrix.mean()
    activations = matrix.new_empty(matrix.shape[0], right.shape[1], dtype=torch.float32)
    parts = torch.split(activations, block_rows(matrix.device))
    for part, block in zip(parts, blocks, strict=True):
        u = (left_of(block) * sign).clamp_(min=0).div_(u_norm)
        a = (u * scale).to(torch.float32)
        part.copy_(torch.where(a > _EPS, a, mean))
    prototypes = (v * scale).T.to(torch.float32)
    prototypes = torch.where(prototypes > _EPS, prototypes, mean)
    return activations, prototypes.contiguous()


def random_init(matrix: Tensor, rank: int, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded non-negative random init scaled so that ``A D`` has the data's mean (sklearn's).

    Shape:
        - matrix: ``[N, M]``; output: ``(A [N, rank], D [rank, M])``
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    scale = math.sqrt(float(matrix.mean()) / rank)
    activations = torch.randn(matrix.shape[0], rank, generator=generator).abs() * scale
    prototypes = torch.randn(rank, matrix.shape[1], generator=generator).abs() * scale
    return activations.to(matrix.device), prototypes.to(matrix.device)


def _import_torchnmf() -> type:
    # torchnmf 0.3.5 calls the deprecated torch.jit.script at import time; a user's
    # ``-W error`` run must not fail on a warning that is torchnmf's to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchnmf.nmf import NMF
    return NMF


def _fit_torchnmf(
    matrix: Tensor, activations: Tensor, prototypes: Tensor, config: NMFConfig
) -> int:
    nmf_class = _import_torchnmf()
    # torchnmf models V ~= H @ W.T with V [N, M]: H = A [N, r], W = D.T [M, r]. It builds its
    # parameters on the CPU, so move the module to the data's device afterwards.
    if float((matrix - activations @ prototypes).square().sum()) == 0.0:
        return 0  # an exact init: torchnmf would divide by its zero initial loss
    model = nmf_class(W=prototypes.T.contiguous(), H=activations).to(matrix.device)
    with torch.enable_grad():
        iterations = int(model.fit(matrix, beta=2, tol=config.tol, max_iter=config.max_iter))
    activations.copy_(model.H.detach())
    prototypes.copy_(model.W.detach().T)
    return iterations


_SOLVERS: dict[Solver, Callable[[Tensor, Tensor, Tensor, NMFConfig], int]] = {
    "hals": fit_hals,
    "mu": fit_mu,
    "torchnmf": _fit_torchnmf,
}
"""Each solver fits ``X ~= A D`` in place from the init it is given; returns its iterations."""


def _explained_variance(error_sq: float, variance_sq: float, total_sq: float) -> float:
    """``1 - error / variance``; NaN where the rows barely vary (below float32 rounding of the
    data, e.g. the exactly uniform posteriors of all-zero weights): a ratio of rounding noise to
    rounding noise means nothing."""
    if variance_sq <= 1e-10 * total_sq:
        return math.nan
    return 1.0 - error_sq / variance_sq


def fit_nmf(matrix: Tensor, config: NMFConfig) -> Factorization:
    """Factorize a non-negative ``[N, M]`` matrix; prototypes come back with unit-norm rows.

    Runs on the matrix's device, in float32, inside ``torch.enable_grad()`` (torchnmf's updates
    use autograd) and outside inference mode (rollout tensors are inference tensors).
    """
    if matrix.dim() != 2:
        raise FactorizationError(f"NMF input must be a matrix [N, M], got {tuple(matrix.shape)}")
    if matrix.numel() == 0:
        raise FactorizationError(
            f"NMF input {tuple(matrix.shape)} is empty; there is nothing to factorize (pass at "
            "least one row with at least one column)"
        )
    # One pass for the three checks (a 35th of isfinite + any + sum): min and max propagate
    # NaN, and a non-negative matrix is all zeros exactly when its max is 0.
    low, high = (float(v) for v in torch.aminmax(matrix.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise FactorizationError("NMF input contains NaN or infinity")
    if low < 0:
        raise FactorizationError(
            f"NMF input contains negative values (min {low:.3g}); pass "
            "probabilities (softmax of the logits), not logits"
        )
    check_rank(config.rank, int(matrix.shape[1]))
    if high == 0.0:
        raise FactorizationError("NMF input is all zeros; there is nothing to factorize")
    with torch.inference_mode(False):
        x = matrix.detach().to(torch.float32)
        if config.solver == "torchnmf" or x.is_inference():
            # torchnmf's autograd cannot save an inference tensor; the other solvers only read
            # X, so its copy is skipped (82 MB at 1024 x 50, issue 33)
            x = x.clone()
        if config.init == "nndsvda":
            a, d = nndsvda_init(x, config.rank)
        else:
            a, d = random_init(x, config.rank, config.seed)
        iterations = _SOLVERS[config.solver](x, a, d, config)
        norms = d.norm(dim=1, keepdim=True).clamp(min=_EPS)
        d = d / norms
        a = a * norms.T
        # A block of rows at a time: the residual and the centred X were two more copies of X.
        column_mean = x.mean(dim=0, keepdim=True)
        error_sq = total_sq = variance_sq = 0.0
        rows = block_rows(x.device)
        for xb, ab in zip(torch.split(x, rows), torch.split(a, rows), strict=True):
            error_sq += norm_sq(torch.addmm(xb, ab, d, alpha=-1))
            total_sq += norm_sq(xb)
            variance_sq += norm_sq(xb - column_mean)
    return Factorization(
        activations=a,
        prototypes=d,
        iterations=iterations,
        relative_error=math.sqrt(error_sq / total_sq),
        explained_variance=_explained_variance(error_sq, variance_sq, total_sq),
    )
