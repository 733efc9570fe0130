from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dreamer_audit.sampling import MAX_SEED, NoiseKeys, gumbel_argmax

seeds = st.lists(st.integers(0, MAX_SEED), min_size=1, max_size=8)


@given(seeds, st.integers(0, 10_000), st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_uniform_is_open_unit_interval_and_a_pure_function(
    episode_seeds: list[int], step: int, stream: int
) -> None:
    keys = NoiseKeys(NoiseKeys.from_seeds(episode_seeds).keys, step)
    u = keys.uniform(stream, (3, 7))
    assert u.shape == (len(episode_seeds), 3, 7)
    assert u.dtype == torch.float32
    assert bool((u > 0).all())
    assert bool((u < 1).all())
    assert torch.equal(u, keys.uniform(stream, (3, 7)))
    # Batch invariance: each episode's numbers depend on its own key alone.
    for b, seed in enumerate(episode_seeds):
        single = NoiseKeys(NoiseKeys.from_seeds([seed]).keys, step).uniform(stream, (3, 7))
        assert torch.equal(single[0], u[b])


def test_uniform_statistics_and_independence_of_steps_and_streams() -> None:
    keys = NoiseKeys.from_seeds(list(range(2000)))
    u = keys.uniform(0, (50,))
    assert abs(float(u.mean()) - 0.5) < 0.005  # 100k draws: standard error 0.0009
    assert abs(float(u.var()) - 1 / 12) < 0.002
    histogram = torch.histc(u, bins=10, min=0, max=1) / u.numel()
    torch.testing.assert_close(histogram, torch.full((10,), 0.1), atol=0.005, rtol=0)
    other_step = keys.advance().uniform(0, (50,))
    other_stream = keys.uniform(1, (50,))
    for other in (other_step, other_stream):
        correlation = torch.corrcoef(torch.stack([u.flatten(), other.flatten()]))[0, 1]
        assert abs(float(correlation)) < 0.02


def test_gumbel_argmax_samples_the_softmax() -> None:
    logits = torch.tensor([0.0, 1.0, -1.0, 2.0]).expand(40_000, 4)
    expected = torch.softmax(logits[0], -1)
    for noise in (NoiseKeys.from_seeds(list(range(40_000))), None):
        counts = torch.bincount(gumbel_argmax(logits, noise, 0), minlength=4) / 40_000
        torch.testing.assert_close(counts, expected, atol=0.012, rtol=0)


def test_from_seeds_masks_to_32_bits() -> None:
    assert NoiseKeys.from_seeds([0, MAX_SEED]).keys.tolist() == [0, MAX_SEED]
