from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dreamer_audit.analysis.factorize import (
    fit_nmf,
    flatten_posteriors,
    nndsvda_init,
    unflatten_rows,
)
from pytest_dreamer_audit.analysis.trust import matched_cosines
from pytest_dreamer_audit.errors import ConfigError, FactorizationError
from pytest_dreamer_audit.results.config import NMFConfig, Solver


def _probs(steps: int, episodes: int, cats: int, classes: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(steps, episodes, cats, classes, generator=g), dim=-1)


def _valid(steps: int, episodes: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ends = torch.randint(1, steps + 1, (episodes,), generator=g)
    return torch.arange(steps)[:, None] < ends[None, :]


shapes = st.tuples(
    st.integers(1, 6), st.integers(1, 5), st.integers(1, 4), st.integers(2, 6), st.integers(0, 99)
)


@given(shapes, st.sampled_from(["pooled", "per_step"]))
@settings(max_examples=40, deadline=None)
def test_flatten_unflatten_round_trip(shape: tuple[int, ...], layout: str) -> None:
    steps, episodes, cats, classes, seed = shape
    probs, valid = _probs(steps, episodes, cats, classes, seed), _valid(steps, episodes, seed)
    rows = flatten_posteriors(probs, valid, layout)  # type: ignore[arg-type]
    n = int(valid.sum())
    if layout == "pooled":
        assert rows.matrix.shape == (n * cats, classes)
        back = unflatten_rows(rows.matrix, rows)
        assert torch.equal(back[valid], probs[valid])
    else:
        assert rows.matrix.shape == (n, cats * classes)
        back = unflatten_rows(rows.matrix, rows).reshape(steps, episodes, cats, classes)
        assert torch.equal(back[valid], probs[valid])
    assert float(back[~valid].abs().sum()) == 0.0
    # Time-major order: steps never decrease down the rows; where each row came from.
    assert bool((rows.step[1:] >= rows.step[:-1]).all())
    where = torch.nonzero(valid)
    repeat = cats if layout == "pooled" else 1
    assert torch.equal(rows.step.long(), where[:, 0].repeat_interleave(repeat))
    assert torch.equal(rows.episode.long(), where[:, 1].repeat_interleave(repeat))
    assert rows.step.dtype == rows.episode.dtype == torch.int32  # 4 bytes a row (issue 33)
    if layout == "pooled":
        assert rows.categorical is not None
        assert rows.categorical.dtype == torch.int32
        assert torch.equal(rows.categorical.long(), torch.arange(cats).repeat(n))


@given(shapes, st.integers(1, 4), st.sampled_from(["hals", "mu", "torchnmf"]))
@settings(max_examples=25, deadline=None)
def test_fit_is_non_negative_with_unit_prototypes(
    shape: tuple[int, ...], rank: int, solver: str
) -> None:
    steps, episodes, cats, classes, seed = shape
    rows = flatten_posteriors(
        _probs(steps, episodes, cats, classes, seed), _valid(steps, episodes, seed), "pooled"
    )
    rank = min(rank, classes)
    fit = fit_nmf(rows.matrix, NMFConfig(rank=rank, solver=solver, max_iter=30))  # type: ignore[arg-type]
    assert fit.activations.shape == (rows.matrix.shape[0], rank)
    assert fit.prototypes.shape == (rank, classes)
    assert bool((fit.activations >= 0).all())
    assert bool((fit.prototypes >= 0).all())
    torch.testing.assert_close(fit.prototypes.norm(dim=1), torch.ones(rank))
    assert 0.0 <= fit.relative_error <= 1.0


def test_known_factors_are_recovered_exactly() -> None:
    """X = A D with three disjoint prototypes: the fit finds them and reconstructs X."""
    prototypes = torch.zeros(3, 6)
    prototypes[0, :2] = torch.tensor([0.8, 0.2])
    prototypes[1, 2:4] = torch.tensor([0.5, 0.5])
    prototypes[2, 4:] = torch.tensor([0.1, 0.9])
    g = torch.Generator().manual_seed(0)
    activations = torch.rand(200, 3, generator=g) * (torch.rand(200, 3, generator=g) < 0.6)
    activations[:3] = torch.eye(3)
    matrix = activations @ prototypes
    fit = fit_nmf(matrix, NMFConfig(rank=3, max_iter=2000, tol=0))
    assert fit.relative_error < 5e-3
    assert fit.explained_variance > 0.999
    cosines = matched_cosines(prototypes, fit.prototypes)
    assert float(cosines.min()) > 0.999
    # With unit-norm prototypes, activations are the true ones rescaled by the true norms.
    order = (prototypes / prototypes.norm(dim=1, keepdim=True)) @ fit.prototypes.T
    match = order.argmax(dim=1)
    expected = activations * prototypes.norm(dim=1)
    torch.testing.assert_close(fit.activations[:, match], expected, atol=1e-2, rtol=0)


def test_rank_one_of_identical_rows_is_the_row_itself() -> None:
    row = torch.tensor([0.1, 0.2, 0.7])
    fit = fit_nmf(row.expand(10, 3).contiguous(), NMFConfig(rank=1, tol=0))
    torch.testing.assert_close(fit.prototypes[0], row / row.norm(), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        fit.activations[:, 0], torch.full((10,), float(row.norm())), atol=1e-5, rtol=0
    )
    assert fit.relative_error < 1e-5


def test_plain_mu_solver_reaches_torchnmf_iterates_from_the_same_init() -> None:
    rows = flatten_posteriors(
        _probs(20, 8, 20, 20, 1), torch.ones(20, 8, dtype=torch.bool), "pooled"
    )
    fits = {
        s: fit_nmf(rows.matrix, NMFConfig(rank=10, solver=s, tol=0, max_iter=100))
        for s in ("mu", "torchnmf")
    }  # type: ignore[arg-type]
    torch.testing.assert_close(
        fits["mu"].prototypes, fits["torchnmf"].prototypes, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        fits["mu"].activations, fits["torchnmf"].activations, atol=1e-5, rtol=1e-4
    )
    assert fits["mu"].relative_error == pytest.approx(fits["torchnmf"].relative_error, abs=1e-6)


def test_tolerance_stops_early_with_the_same_count_in_both_solvers() -> None:
    rows = flatten_posteriors(
        _probs(10, 4, 20, 20, 2), torch.ones(10, 4, dtype=torch.bool), "pooled"
    )
    counts = {
        s: fit_nmf(rows.matrix, NMFConfig(rank=5, solver=s, tol=1e-3)).iterations
        for s in ("mu", "torchnmf")
    }  # type: ignore[arg-type]
    assert counts["mu"] == counts["torchnmf"]
    assert counts["mu"] < 200
    assert counts["mu"] % 10 == 0


def test_nndsvda_init_is_deterministic_non_negative_and_close_to_the_data() -> None:
    matrix = flatten_posteriors(
        _probs(10, 4, 5, 8, 3), torch.ones(10, 4, dtype=torch.bool), "pooled"
    ).matrix
    a1, d1 = nndsvda_init(matrix, 4)
    a2, d2 = nndsvda_init(matrix, 4)
    assert torch.equal(a1, a2)
    assert torch.equal(d1, d2)
    assert bool((a1 > 0).all())
    assert bool((d1 > 0).all())
    # Rank 1 is the leading singular pair (Perron: non-negative), the best rank-1 approximation.
    a, d = nndsvda_init(matrix, 1)
    singular = torch.linalg.svdvals(matrix)
    best = torch.sqrt(1 - singular[0] ** 2 / (singular**2).sum())
    torch.testing.assert_close((matrix - a @ d).norm() / matrix.norm(), best, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("probs", "message"),
    [
        (torch.randn(3, 2, 4, 5), "negative values .* never raw logits"),
        (torch.full((3, 2, 4, 5), float("nan")), "NaN or infinity"),
        (torch.ones(3, 2, 20), r"must be \[L, B, C, K\]"),
    ],
    ids=["logits", "nan", "3d"],
)
def test_bad_inputs_are_refused_before_fitting(probs: torch.Tensor, message: str) -> None:
    with pytest.raises(FactorizationError, match=message):
        flatten_posteriors(probs, torch.ones(3, 2, dtype=torch.bool), "pooled")


def test_more_bad_inputs() -> None:
    probs = _probs(3, 2, 4, 5, 0)
    with pytest.raises(FactorizationError, match="no valid steps"):
        flatten_posteriors(probs, torch.zeros(3, 2, dtype=torch.bool), "pooled")
    with pytest.raises(FactorizationError, match="valid mask"):
        flatten_posteriors(probs, torch.ones(2, 2, dtype=torch.bool), "pooled")
    with pytest.raises(ConfigError, match="rank 6 is larger than the 5 columns"):
        fit_nmf(probs.reshape(-1, 5), NMFConfig(rank=6))
    with pytest.raises(FactorizationError, match="all zeros"):
        fit_nmf(torch.zeros(4, 5), NMFConfig(rank=2))
    with pytest.raises(FactorizationError, match="negative"):
        fit_nmf(-torch.ones(4, 5), NMFConfig(rank=2))
    for empty in (torch.zeros(0, 5), torch.zeros(4, 0)):
        with pytest.raises(FactorizationError, match="is empty"):
            fit_nmf(empty, NMFConfig(rank=2))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "NaN or infinity"),
        (float("inf"), "NaN or infinity"),
        (float("-inf"), "NaN or infinity"),
        (-1e-3, r"negative values \(min -0.001\)"),
    ],
    ids=["nan", "inf", "-inf", "negative"],
)
def test_fit_refuses_one_bad_entry_among_valid_ones(value: float, message: str) -> None:
    """The checks are one min/max pass: a single bad entry anywhere must still be caught."""
    matrix = torch.rand(300, 20)
    matrix[217, 13] = value
    with pytest.raises(FactorizationError, match=message):
        fit_nmf(matrix, NMFConfig(rank=3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rank": 0}, "NMF rank must be an integer >= 1, got 0"),
        ({"layout": "flat"}, "unknown NMF layout 'flat'; choose from pooled, per_step"),
        ({"solver": "sklearn"}, "unknown NMF solver 'sklearn'; choose from hals, mu, torchnmf"),
        ({"tol": -1.0}, "tol must be"),
    ],
)
def test_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NMFConfig(**kwargs)  # type: ignore[arg-type]


def test_fit_works_on_inference_tensors_and_under_no_grad() -> None:
    with torch.inference_mode():
        matrix = _probs(5, 3, 4, 5, 0).reshape(-1, 5)
    with torch.no_grad():
        fit = fit_nmf(matrix, NMFConfig(rank=2, solver="torchnmf", max_iter=20))
    assert fit.iterations == 20


def test_torchnmf_import_warnings_do_not_break_a_warnings_as_errors_run() -> None:
    code = (
        "import torch\n"
        "from pytest_dreamer_audit.analysis.factorize import fit_nmf\nfrom pytest_dreamer_audit.results.config import NMFConfig\n"
        "fit = fit_nmf(torch.rand(8, 4), NMFConfig(rank=2, solver='torchnmf', max_iter=10))\n"
        "print(fit.iterations)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10"


@pytest.mark.gpu
@pytest.mark.parametrize("solver", ["hals", "mu", "torchnmf"])
def test_fit_on_cuda_matches_the_cpu_fit(solver: Solver) -> None:
    matrix = flatten_posteriors(_probs(12, 6, 4, 8, 1), _valid(12, 6, 1), "pooled").matrix
    config = NMFConfig(rank=3, solver=solver, max_iter=100)
    cpu = fit_nmf(matrix, config)
    gpu = fit_nmf(matrix.cuda(), config)
    assert gpu.activations.device.type == "cuda"
    assert gpu.prototypes.device.type == "cuda"
    # Float rounding differs between the devices, so the loss checks (every 10 iterations) may
    # stop the fits at different iterations; the fits themselves must agree.
    assert abs(gpu.iterations - cpu.iterations) <= 20
    assert gpu.relative_error == pytest.approx(cpu.relative_error, abs=1e-3)
    assert float(matched_cosines(cpu.prototypes, gpu.prototypes.cpu()).min()) > 0.99
    reconstruction = (gpu.activations @ gpu.prototypes).cpu()
    torch.testing.assert_close(reconstruction, cpu.activations @ cpu.prototypes, atol=1e-2, rtol=0)


def test_explained_variance_is_undefined_for_rows_that_do_not_vary() -> None:
    # All-zero weights give exactly uniform posteriors: nothing varies, so nothing is explained
    # (the ratio of float rounding to float rounding read 0.7 before).
    uniform = torch.full((64, 20), 1 / 20)
    fit = fit_nmf(uniform, NMFConfig(rank=3, max_iter=20))
    assert math.isnan(fit.explained_variance)
    assert fit.relative_error < 1e-3
    varied = torch.rand(64, 20, generator=torch.Generator().manual_seed(0))
    assert 0 < fit_nmf(varied, NMFConfig(rank=3, max_iter=20)).explained_variance < 1


def _planted(rows: int, width: int, rank: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An exactly rank-``rank`` non-negative ``[rows, width]`` matrix and its prototypes: sparse
    activations and prototypes with a private column each (separable, so the NMF is unique)."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(rank, width, generator=g) * (torch.rand(rank, width, generator=g) < 0.5)
    prototypes[:, :rank] = torch.eye(rank) + 0.0
    activations = torch.rand(rows, rank, generator=g) * (torch.rand(rows, rank, generator=g) < 0.5)
    activations[:rank] = torch.eye(rank)
    return activations @ prototypes, prototypes


def test_hals_recovers_an_exactly_low_rank_matrix_and_beats_mu() -> None:
    matrix, prototypes = _planted(2_000, 20, 5, 0)
    hals = fit_nmf(matrix, NMFConfig(rank=5, solver="hals", max_iter=300, tol=0))
    mu = fit_nmf(matrix, NMFConfig(rank=5, solver="mu", max_iter=300, tol=0))
    assert hals.relative_error < 1e-4
    assert hals.relative_error <= mu.relative_error
    assert float(matched_cosines(prototypes, hals.prototypes).min()) > 0.9999


def test_hals_reaches_a_lower_error_than_mu_on_posteriors_in_half_the_iterations() -> None:
    rows = flatten_posteriors(
        _probs(20, 8, 20, 20, 1), torch.ones(20, 8, dtype=torch.bool), "pooled"
    )
    mu = fit_nmf(rows.matrix, NMFConfig(rank=10, solver="mu", max_iter=200, tol=0))
    hals = fit_nmf(rows.matrix, NMFConfig(rank=10, solver="hals", max_iter=100, tol=0))
    assert hals.relative_error < mu.relative_error


@pytest.mark.parametrize("init", ["nndsvda", "random"])
def test_hals_stops_on_convergence_and_is_deterministic(init: str) -> None:
    rows = flatten_posteriors(
        _probs(10, 4, 20, 20, 2), torch.ones(10, 4, dtype=torch.bool), "pooled"
    )
    config = NMFConfig(rank=5, solver="hals", init=init, tol=1e-4, max_iter=500)  # type: ignore[arg-type]
    first, second = fit_nmf(rows.matrix, config), fit_nmf(rows.matrix, config)
    assert first.iterations < 500
    assert first.iterations == second.iterations
    assert torch.equal(first.activations, second.activations)
    assert torch.equal(first.prototypes, second.prototypes)
    assert bool((first.activations >= 0).all())
    assert bool((first.prototypes >= 0).all())
    # tol = 0 never stops early; the stop at tol > 0 costs little error.
    full = fit_nmf(rows.matrix, NMFConfig(rank=5, solver="hals", init=init, tol=0, max_iter=500))  # type: ignore[arg-type]
    assert full.iterations == 500
    assert full.relative_error <= first.relative_error + 1e-6
    assert first.relative_error < full.relative_error * 1.01


def test_hals_is_the_same_fit_in_one_block_or_many(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_dreamer_audit.analysis import nmf_solvers

    rows = flatten_posteriors(
        _probs(12, 6, 20, 20, 3), torch.ones(12, 6, dtype=torch.bool), "pooled"
    )
    config = NMFConfig(rank=6, solver="hals", max_iter=40, tol=0)
    whole = fit_nmf(rows.matrix, config)
    monkeypatch.setattr(nmf_solvers, "block_rows", lambda device: 100)
    blocks = fit_nmf(rows.matrix, config)
    torch.testing.assert_close(blocks.prototypes, whole.prototypes, atol=1e-4, rtol=0)
    torch.testing.assert_close(blocks.activations, whole.activations, atol=1e-4, rtol=1e-3)


def test_hals_survives_dead_factors() -> None:
    """Rank 4 of a rank-2 matrix: spare factors may die (all-zero columns or rows); their
    updates are skipped instead of dividing by zero."""
    matrix, _ = _planted(300, 6, 2, 4)
    for init in ("nndsvda", "random"):
        fit = fit_nmf(matrix, NMFConfig(rank=4, solver="hals", init=init, max_iter=200, tol=0))  # type: ignore[arg-type]
        assert bool(torch.isfinite(fit.activations).all())
        assert bool(torch.isfinite(fit.prototypes).all())
        assert fit.relative_error < 1e-3
