from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.sampling import MAX_SEED, NoiseKeys, gumbel_argmax

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


@given(
    st.integers(1, 6),
    st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
    st.integers(0, 2**40),
    st.integers(1, 12),
)
@settings(max_examples=40, deadline=None)
def test_noise_drawn_ahead_equals_noise_drawn_step_by_step(
    batch: int, shape: tuple[int, ...], step: int, steps: int
) -> None:
    keys = NoiseKeys(NoiseKeys.from_seeds(list(range(100, 100 + batch))).keys, step)
    drawn = keys.draw_ahead({0: shape, 2: (3,)}, steps)
    assert len(drawn) == steps
    for s, noise in enumerate(drawn):
        assert torch.equal(noise.gumbel(0, shape), keys.advance(s).gumbel(0, shape))
        assert torch.equal(noise.gumbel(2, (3,)), keys.advance(s).gumbel(2, (3,)))
    uniforms = keys.uniform_ahead(0, shape, steps)
    assert torch.equal(uniforms[-1], keys.advance(steps - 1).uniform(0, shape))


def test_draw_steps_in_small_blocks_gives_the_same_noise_as_one_block() -> None:
    keys = NoiseKeys.from_seeds([3, 4, 5])
    streams = {0: (4, 4), 1: (2,)}
    one_block = list(keys.draw_steps(streams, 10))
    # 3 episodes x 18 numbers per step = 54: a budget of 120 gives blocks of 2 steps,
    # a budget of 1 blocks of a single step.
    for budget in (120, 1):
        blocks = list(keys.draw_steps(streams, 10, block_elements=budget))
        assert len(blocks) == 10
        for a, b in zip(one_block, blocks, strict=True):
            assert torch.equal(a.gumbel(0, (4, 4)), b.gumbel(0, (4, 4)))
            assert torch.equal(a.gumbel(1, (2,)), b.gumbel(1, (2,)))
    assert torch.equal(one_block[9].gumbel(1, (2,)), keys.advance(9).gumbel(1, (2,)))
    assert keys.advance(3) == keys.advance().advance().advance()


def test_drawn_noise_refuses_streams_and_shapes_it_was_not_drawn_with() -> None:
    (noise,) = NoiseKeys.from_seeds([1, 2]).draw_ahead({0: (5,)}, 1)
    assert noise.gumbel(0, (5,)).shape == (2, 5)
    with pytest.raises(ConfigError, match=r"no noise was drawn for stream 1 \(drawn: \[0\]\)"):
        noise.gumbel(1, (5,))
    with pytest.raises(ConfigError, match=r"drawn with shape \(5,\), but a draw of shape \(4,\)"):
        noise.gumbel(0, (4,))
    with pytest.raises(ConfigError, match="at least 1 step, got 0"):
        NoiseKeys.from_seeds([1]).draw_ahead({0: (5,)}, 0)


@pytest.mark.gpu
def test_noise_on_cuda_is_the_noise_on_the_cpu() -> None:
    cpu = NoiseKeys(NoiseKeys.from_seeds(list(range(50))).keys, 7)
    gpu = NoiseKeys(NoiseKeys.from_seeds(list(range(50)), device="cuda").keys, 7)
    # The hash is integer arithmetic: the uniforms are the same bits on any device.
    assert torch.equal(gpu.uniform_ahead(1, (20, 20), 3).cpu(), cpu.uniform_ahead(1, (20, 20), 3))
    # The logs of the Gumbel transform may differ in the last bit between CUDA and the CPU.
    drawn = gpu.draw_ahead({1: (20, 20)}, 3)
    for s in range(3):
        torch.testing.assert_close(
            drawn[s].gumbel(1, (20, 20)).cpu(), cpu.advance(s).gumbel(1, (20, 20))
        )


def test_draw_steps_refuses_negative_counts_and_empty_blocks() -> None:
    keys = NoiseKeys.from_seeds([1])
    assert list(keys.draw_steps({0: (2,)}, 0)) == []
    with pytest.raises(ConfigError, match="step count >= 0, got -1"):
        list(keys.draw_steps({0: (2,)}, -1))
    with pytest.raises(ConfigError, match="block_elements must be at least 1, got 0"):
        list(keys.draw_steps({0: (2,)}, 3, block_elements=0))
