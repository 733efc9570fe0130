"""Which parameters each randomization stage permutes, written against the hand-sampled
survivors of issue 35 for ``analysis/randomization.py`` (benchmarks/mutation.md): a layer prefix
with a typo (``convolutions.4`` -> ``.3``, a layer with no parameters) randomized nothing,
silently, and no test checked that every stage's prefix matches parameters or that layers get
distinct permutations; and two survivors of mutmut (chunks along the wrong axis, Bessel with two
classes)."""

from __future__ import annotations

import pytest
import torch

from pytest_dreamer_audit.analysis.randomization import (
    LAYERS,
    permute_parameters,
    permuted_tensors,
    stages,
)
from pytest_dreamer_audit.testing import tiny_agent


def _owned(names: list[str], prefix: str) -> list[str]:
    return [name for name in names if name.startswith(prefix + ".")]


def test_every_layer_prefix_names_parameters_and_no_two_share_one() -> None:
    # A prefix with a typo, or one naming a layer without parameters (an activation's index in
    # a Sequential), would make its stage a no-op that still reports a similarity.
    for pomdp in (True, False):
        names = [name for name, _ in tiny_agent(pomdp=pomdp).named_parameters()]
        owned = {layer: _owned(names, prefix) for layer, prefix in LAYERS}
        assert all(owned.values()), {layer: found for layer, found in owned.items() if not found}
        every = [name for found in owned.values() for name in found]
        assert len(every) == len(set(every))  # each parameter in one layer only
        # The encoder's third convolution: its weight and bias (not an activation's index).
        assert sorted(owned["encoder conv 3"]) == [
            "obs_encoder.convolutions.4.bias",
            "obs_encoder.convolutions.4.weight",
        ]


def test_each_stage_permutes_exactly_the_parameters_of_its_layers() -> None:
    agent = tiny_agent(seed=1)
    names = [name for name, _ in agent.named_parameters()]
    for _, stage, layers in stages("cascade") + stages("full"):
        expected = sorted(name for i in layers for name in _owned(names, LAYERS[i][1]))
        got = permuted_tensors(agent, layers, seed=3)
        assert sorted(got) == expected, stage
        for name, tensor in got.items():
            original = dict(agent.named_parameters())[name]
            assert tensor.shape == original.shape
            assert not torch.equal(tensor, original), name  # moved, not left in place


def test_layers_get_their_own_permutation_the_same_in_every_stage() -> None:
    agent = tiny_agent(seed=2)
    alone = {i: permuted_tensors(agent, [i], seed=5) for i in range(len(LAYERS))}
    together = permuted_tensors(agent, range(len(LAYERS)), seed=5)
    for found in alone.values():
        for name, tensor in found.items():
            assert torch.equal(together[name], tensor)  # cascade and independent agree
    # The permutation depends on the seed; the copy holds exactly these tensors.
    first = permuted_tensors(agent, [0], seed=5)
    other_seed = permuted_tensors(agent, [0], seed=6)
    assert any(not torch.equal(first[name], other_seed[name]) for name in first)
    clone = permute_parameters(agent, [0], seed=5)
    for name, tensor in first.items():
        assert torch.equal(dict(clone.named_parameters())[name], tensor)


def test_the_same_values_in_two_layers_are_permuted_differently() -> None:
    # Fill every parameter with 0, 1, 2, ...: the permutation itself is then the permuted
    # tensor, and two layers of the same size must not share it (it is seeded by the seed and
    # the layer: seed * 1009 + index).
    agent = tiny_agent(seed=0)
    with torch.no_grad():
        for _, parameter in agent.named_parameters():
            parameter.copy_(
                torch.arange(parameter.numel(), dtype=parameter.dtype).view_as(parameter)
            )
    permutations: dict[int, list[torch.Tensor]] = {}
    for i in range(len(LAYERS)):
        for tensor in permuted_tensors(agent, [i], seed=0).values():
            permutations.setdefault(tensor.numel(), []).append(tensor.flatten())
    shared = [group for group in permutations.values() if len(group) > 1]
    assert shared  # some sizes occur in two layers (biases of equal width)
    for group in shared:
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                assert not torch.equal(group[a], group[b])


def test_the_chunked_reductions_cover_every_step_when_a_step_exceeds_half_a_chunk() -> None:
    # Kills _per_categorical_29 and softmax__22 (chunks over the episodes' axis in place of the
    # steps': with more steps than episodes, the later steps were never computed). A step of
    # 2^19 logits makes chunks of 2 steps; 5 steps, 1 episode.
    from pytest_dreamer_audit.analysis.randomization import _CHUNK_ENTRIES, mean_entropy, softmax_

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, 512, _CHUNK_ENTRIES // 2 // 512, generator=generator)
    logits[3:] *= 4  # the later steps more peaked: a different entropy
    valid = torch.ones(5, 1, dtype=torch.bool)
    log_p = torch.log_softmax(logits, dim=-1)
    expected = float((-(log_p.exp() * log_p).sum(-1)).mean())
    assert mean_entropy(logits, valid) == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(softmax_(logits.clone()), torch.softmax(logits, dim=-1))


def test_the_spread_of_two_classes_is_bessel_corrected() -> None:
    # Kills _spread_15 (`max(classes - 1, 2)`: two classes divided by 2, not 1).
    from pytest_dreamer_audit.analysis.randomization import _spread

    logits = torch.tensor([[[[0.0, 2.0]]]])  # one step, episode, categorical; 2 classes
    valid = torch.ones(1, 1, dtype=torch.bool)
    assert float(_spread(logits, valid)) == pytest.approx(2**0.5)  # std of (0, 2), n - 1 = 1
