"""Replays of permuted agents on a recorded trajectory, for the sanity checks.

A replay feeds a trajectory's observations and actions to an agent whose posterior-making
layers are permuted (``randomization.py``) and records its latents. The sanity check replays
five permutation seeds (``sanity.py``) and reads only their posterior logits, except the first
seed's, whose prior logits the full randomization stage scores (surprise) and whose
deterministic states the probes use as their random control: so only that is recorded
(:func:`streamed_replays`). Every seed's samples, deterministic states, prior logits and
embeddings for the whole trajectory were 4 of the 8.7 posteriors per episode-step that
``explain`` held at its peak at 1024 x 50 (issue 33).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from ..model.agent import STREAM_POSTERIOR, DreamerAgent
from ..model.sampling import NoiseKeys
from ..rollout.rollouts import ReplayedLatents, Trajectory, replay_posteriors
from .randomization import LAYERS, permute_parameters, permuted_tensors

__all__ = [
    "ENCODE_ROWS",
    "REPLAY_CHUNK_BYTES",
    "RandomizedReplay",
    "encode_in_chunks",
    "randomized_replays",
    "replay_bytes",
    "stacked_replays",
    "streamed_replays",
]

ENCODE_ROWS = 4096
"""Observations per encoder batch: the convolutions' activations of every step at once were
~25 KB per episode-step of the reference agent, the sanity check's peak (issue 33)."""
REPLAY_CHUNK_BYTES = 96 * 2**20
"""What the randomized replays of one :func:`streamed_replays` chunk may hold: all five seeds in
one stacked replay up to about 250 x 50 episode-steps of the reference agent (1,600 bytes of
posterior logits each), fewer above."""


@dataclass(frozen=True)
class RandomizedReplay:
    """A permuted agent's replay as far as it is read.

    Attributes:
        posterior_logits: ``[L, B, C, K]``.
        prior_logits: ``[L, B, C, K]``; None where not recorded.
        deter: ``[L, B, deter]``; None where not recorded.
    """

    posterior_logits: Tensor
    prior_logits: Tensor | None = None
    deter: Tensor | None = None


def encode_in_chunks(
    encode: Callable[[Tensor], Tensor], observations: Tensor, out: Tensor
) -> Tensor:
    """``encode`` of ``observations [N, ...]`` (any dtype, any device) written into ``out``
    ``[N, embedding]`` on its device, :data:`ENCODE_ROWS` at a time (no step depends on
    another)."""
    for start in range(0, observations.shape[0], ENCODE_ROWS):
        part = observations[start : start + ENCODE_ROWS].to(out.device).float()
        out[start : start + part.shape[0]] = encode(part)
    return out


@dataclass(frozen=True)
class _Recorded:
    """A stacked replay's tensors: every variant's posterior logits; the first ``whole``
    variants' prior logits and deterministic states (None when ``whole`` is 0 or the states
    were not asked for) and samples (None unless asked for).

    Shape:
        - posterior: ``[S, L, B, C, K]``; prior, samples: ``[W, L, B, C, K]``;
          deter: ``[W, L, B, deter]``
    """

    posterior: Tensor
    prior: Tensor | None
    samples: Tensor | None
    deter: Tensor | None


def _replay(
    agent: DreamerAgent,
    variants: Sequence[Mapping[str, Tensor]],
    trajectory: Trajectory,
    *,
    whole: int,
    samples: bool,
    deter: bool,
) -> _Recorded:
    """The stacked replay of :func:`stacked_replays`, recording every variant's posterior
    logits and, for the first ``whole`` variants, the prior logits, the deterministic states
    (if ``deter``) and the samples (if ``samples``). The observations are encoded a block of
    whole steps (about :data:`ENCODE_ROWS` rows) at a time, as the recurrence reaches them."""
    sizes, device = agent.sizes, agent.device
    steps, batch = trajectory.steps, trajectory.episodes
    latent = (sizes.categoricals, sizes.classes)
    count = len(variants)
    prefix = "obs_encoder."

    def stacked(name: str, transpose: bool = False) -> Tensor:
        own = agent.get_parameter(name)
        tensors: list[Tensor] = [variant.get(name, own) for variant in variants]
        weights = torch.stack(tensors)
        # [S, in, out] in memory order (bmm on the transposed view was 2x slower), or a bias
        return weights.transpose(1, 2).contiguous() if transpose else weights[:, None]

    encoders: list[Callable[[Tensor], Tensor]] = []
    for variant in variants:
        weights = {n.removeprefix(prefix): t for n, t in variant.items() if n.startswith(prefix)}

        def encode(obs: Tensor, weights: Mapping[str, Tensor] = weights) -> Tensor:
            return functional_call(agent.obs_encoder, dict(weights), (obs,))

        encoders.append(encode)
    block_steps = max(1, ENCODE_ROWS // max(batch, 1))

    def embedded(start: int) -> Tensor:
        """``[S, l, B, embedding]``: every variant's embeddings of steps ``start`` to
        ``start + block_steps``."""
        observations = trajectory.observations[start : start + block_steps].flatten(0, 1)
        out = torch.empty(count, observations.shape[0], sizes.embedding, device=device)
        for i, encode in enumerate(encoders):
            encode_in_chunks(encode, observations, out[i])
        return out.reshape(count, -1, batch, sizes.embedding)

    with torch.inference_mode():
        actions = F.one_hot(trajectory.actions.to(device), sizes.actions).float()  # [L, B, A]
        embed_w = stacked("rssm.fc_embed_state_action.0.weight", True)
        embed_b = stacked("rssm.fc_embed_state_action.0.bias")
        ih_w, ih_b = stacked("rssm.rnn.weight_ih", True), stacked("rssm.rnn.bias_ih")
        hh_w, hh_b = stacked("rssm.rnn.weight_hh", True), stacked("rssm.rnn.bias_hh")
        post_w = stacked("rssm.fc_posterior.0.weight", True)
        post_b = stacked("rssm.fc_posterior.0.bias")
        out_w = stacked("rssm.fc_posterior.2.weight", True)
        out_b = stacked("rssm.fc_posterior.2.bias")
        stoch = torch.zeros(count, batch, sizes.stoch, device=device)
        state = torch.zeros(count, batch, sizes.deter, device=device)
        action = torch.zeros(count, batch, sizes.actions, device=device)
        keys = NoiseKeys.from_seeds(list(trajectory.seeds), device)
        # Written in place: lists stacked after the loop held every step twice at the end.
        posterior = torch.empty(count, steps, batch, *latent, device=device)
        recorded = torch.empty(whole if samples else 0, steps, batch, *latent, device=device)
        deters = torch.empty(whole, steps, batch, sizes.deter, device=device)
        noises = keys.draw_steps(agent.noise_streams(), steps)
        embeddings = embedded(0)
        for t, noise in zip(range(steps), noises, strict=True):
            if t % block_steps == 0 and t:
                embeddings = embedded(t)
            x = F.elu(torch.baddbmm(embed_b, torch.cat([stoch, action], dim=-1), embed_w))
            gates_x = torch.baddbmm(ih_b, x, ih_w).chunk(3, dim=-1)
            gates_h = torch.baddbmm(hh_b, state, hh_w).chunk(3, dim=-1)
            reset = torch.sigmoid(gates_x[0] + gates_h[0])
            update = torch.sigmoid(gates_x[1] + gates_h[1])
            candidate = torch.tanh(gates_x[2] + reset * gates_h[2])
            state = (1 - update) * candidate + update * state  # PyTorch's GRUCell
            features = torch.cat([state, embeddings[:, t % block_steps]], -1)
            hidden = F.elu(torch.baddbmm(post_b, features, post_w))
            step = torch.baddbmm(out_b, hidden, out_w).reshape(count, batch, *latent)
            sample = (step + noise.gumbel(STREAM_POSTERIOR, latent)[None]).argmax(dim=-1)
            one_hot = F.one_hot(sample, sizes.classes).float()
            stoch = one_hot.flatten(start_dim=2)
            action = actions[t][None].expand(count, -1, -1)
            posterior[:, t], deters[:, t] = step, state[:whole]
            if samples:
                recorded[:, t] = one_hot[:whole]
        del embeddings
        prior = None
        if whole:  # the prior does not feed the recurrence: all steps at once, after it
            prior_w = stacked("rssm.fc_prior.0.weight", True)[:whole]
            prior_b = stacked("rssm.fc_prior.0.bias")[:whole]
            prior_out_w = stacked("rssm.fc_prior.2.weight", True)[:whole]
            prior_out_b = stacked("rssm.fc_prior.2.bias")[:whole]
            hidden = F.elu(torch.baddbmm(prior_b, deters.flatten(1, 2), prior_w))
            prior = torch.baddbmm(prior_out_b, hidden, prior_out_w)
            prior = prior.reshape(whole, steps, batch, *latent)
            del hidden
    return _Recorded(
        posterior,
        prior,
        recorded if samples else None,
        deters if deter and whole else None,
    )


def stacked_replays(
    agent: DreamerAgent, variants: Sequence[Mapping[str, Tensor]], trajectory: Trajectory
) -> list[ReplayedLatents]:
    """``agent`` with each variant's parameters (name -> tensor; the agent's own where a
    variant has none) replayed on ``trajectory`` (its observations and actions, its episodes'
    noise), all variants in each step's batched matrix products: what
    :func:`~pytest_dreamer_audit.rollout.rollouts.replay_posteriors` gives for each variant
    (to float rounding) at a fraction of the cost, since a replay step's time is the count of
    its small operations, not their size. Needs the reference forward pass (a plain
    :class:`DreamerAgent`, not a test double that overrides it).

    Shape:
        - output: one :class:`ReplayedLatents` per variant (``[L, B, ...]`` tensors)
    """
    count = len(variants)
    out = _replay(agent, variants, trajectory, whole=count, samples=True, deter=True)
    if out.prior is None or out.samples is None or out.deter is None:
        return []  # no variants
    return [
        ReplayedLatents(out.prior[i], out.posterior[i], out.samples[i], out.deter[i])
        for i in range(count)
    ]


def randomized_replays(
    agent: DreamerAgent, trajectory: Trajectory, seeds: Sequence[int]
) -> list[ReplayedLatents]:
    """The agent with every posterior-making layer permuted, one permutation per seed
    (:func:`~.randomization.permute_parameters`'s), replayed on ``trajectory``: in one
    :func:`stacked_replays` for the reference forward pass, one replay each for a test double
    that overrides it."""
    everything = tuple(range(len(LAYERS)))
    if not seeds:
        return []
    if type(agent) is DreamerAgent:
        variants = [permuted_tensors(agent, everything, seed) for seed in seeds]
        return stacked_replays(agent, variants, trajectory)
    return [
        replay_posteriors(permute_parameters(agent, everything, seed), trajectory) for seed in seeds
    ]


def replay_bytes(agent: DreamerAgent, trajectory: Trajectory) -> int:
    """What one variant of :func:`streamed_replays` that records its posterior logits only
    holds, in float32 bytes (its embeddings are a block of steps at a time, bounded)."""
    sizes = agent.sizes
    return 4 * sizes.categoricals * sizes.classes * trajectory.steps * trajectory.episodes


def _chunk(
    agent: DreamerAgent, trajectory: Trajectory, seeds: Sequence[int], whole: int, deter: bool
) -> list[RandomizedReplay]:
    """One chunk of :func:`streamed_replays`: the first ``whole`` seeds with their prior
    logits (and deterministic states if ``deter``), the others their posterior logits."""
    everything = tuple(range(len(LAYERS)))
    if type(agent) is not DreamerAgent:  # a test double: its own forward pass, one at a time
        replays = []
        for i, seed in enumerate(seeds):
            one = replay_posteriors(permute_parameters(agent, everything, seed), trajectory)
            replays.append(
                RandomizedReplay(one.posterior_logits, one.prior_logits, one.deter)
                if i < whole
                else RandomizedReplay(one.posterior_logits)
            )
            del one
        return replays
    variants = [permuted_tensors(agent, everything, seed) for seed in seeds]
    out = _replay(agent, variants, trajectory, whole=whole, samples=False, deter=deter)
    del variants
    return [
        RandomizedReplay(
            out.posterior[i],
            out.prior[i] if out.prior is not None and i < whole else None,
            out.deter[i] if out.deter is not None and i < whole else None,
        )
        for i in range(len(seeds))
    ]


def streamed_replays(
    agent: DreamerAgent,
    trajectory: Trajectory,
    seeds: Sequence[int],
    chunk_bytes: int = REPLAY_CHUNK_BYTES,
    *,
    whole: int = 0,
    deter: bool = False,
) -> Iterator[RandomizedReplay]:
    """The replays of :func:`randomized_replays` made a chunk of seeds at a time, as many as
    ``chunk_bytes`` holds (at least one), recording only what is read: the posterior logits of
    every seed; the prior logits of the first ``whole`` seeds and, if ``deter``, their
    deterministic states. The next chunk is replayed only when the caller asks for its first
    replay, so a caller that drops each replay before asking for the next holds one chunk.
    The same logits to float rounding (a stacked replay's variants do not interact)."""
    width = max(1, chunk_bytes // max(replay_bytes(agent, trajectory), 1))
    for start in range(0, len(seeds), width):
        part = seeds[start : start + width]
        chunk = _chunk(agent, trajectory, part, max(0, min(whole - start, len(part))), deter)
        chunk.reverse()
        while chunk:
            yield chunk.pop()
