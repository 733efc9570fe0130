"""Sanity checks on what the posterior path produces, over several seeds.

The first sanity check (``randomization.py``) compares the configured score, and the default
score, surprise, is ``KL(posterior || prior)``: randomizing the prior moves it even when the
posterior ignores every weight, so a posterior that is a fixed function of the screen passed it
(0.244 on the bundled agent's planted double). Both checks here compare a quantity the prior
cannot move, the posterior's NMF activation score (``scores.py``: ``||A_i||`` with unit
prototypes, aggregated per observation), refitted on the changed posteriors, and test ``|rho|``
(two-sided) over several seeds, so that the spread is known:

* **randomized weights** (Adebayo et al. 2018): every layer that makes the posteriors is
  permuted (:func:`~.randomization.permute_parameters`, scale kept by
  :func:`~.randomization.match_scale`), one permutation per seed;
* **memory**: the trained posterior network is fed the deterministic state of another valid
  step (a seeded shuffle over all episodes and steps) with the true observation. A posterior
  that ignores the deterministic state, or reads only the screen, gives ``|rho| = 1``; the
  bundled agent's 0.62-0.74 (16 x 50, three rollout seeds x five shuffles).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from ..model.agent import STREAM_POSTERIOR, DreamerAgent
from ..model.sampling import NoiseKeys
from ..results.config import Layout
from ..rollout.rollouts import ReplayedLatents, Trajectory, replay_posteriors
from .factorize import Factorization, FlatRows, NMFConfig, fit_nmf, flatten_posteriors
from .randomization import LAYERS, match_scale, permute_parameters, permuted_tensors
from .scores import categorical_scores, observation_scores
from .trust import spearman

__all__ = [
    "MEMORY_SEEDS",
    "SANITY_SEEDS",
    "PosteriorSanity",
    "activation_observation_scores",
    "measure_posterior_sanity",
    "memory_spearmans",
    "randomized_replays",
    "randomized_spearmans",
    "replay_bytes",
    "sanity_budget",
    "stacked_replays",
    "streamed_replays",
]

SANITY_SEEDS = 5
"""Permutation seeds of the posterior sanity check (each a replay and an NMF refit)."""
MEMORY_SEEDS = 3
"""Shuffles of the deterministic states for the memory check (its spread over seeds is small:
0.02-0.06 of ``|rho|`` on the bundled agent over five)."""
REPLAY_CHUNK_BYTES = 96 * 2**20
"""What the randomized replays of one :func:`streamed_replays` chunk may hold: all five seeds in
one stacked replay up to about 200 x 50 episode-steps of the reference agent, fewer above (one
replay is ~8 KB per episode-step, five times the posterior; five at once were 1.2 of the 1.98 GB
peak at 1024 x 50, issue 33)."""


_ENCODE_ROWS = 4096
"""Observations per encoder batch: the convolutions' activations of every step at once were
~25 KB per episode-step of the reference agent, the sanity check's peak (issue 33)."""


def _encoded(encode: Callable[[Tensor], Tensor], observations: Tensor, out: Tensor) -> Tensor:
    """``encode`` of ``observations [N, ...]`` (any dtype, any device) written into ``out``
    ``[N, embedding]`` on the agent's device, ``_ENCODE_ROWS`` at a time (no step depends on
    another)."""
    for start in range(0, observations.shape[0], _ENCODE_ROWS):
        part = observations[start : start + _ENCODE_ROWS].to(out.device).float()
        out[start : start + part.shape[0]] = encode(part)
    return out


def activation_observation_scores(rows: FlatRows, fit: Factorization) -> Tensor:
    """The activation score of every observation (posterior-only: no prior enters it).

    Shape:
        - output: ``[L, B]``, 0 at steps without rows
    """
    return observation_scores("activation", categorical_scores("activation", rows, fit))


def _spearman_of(
    probs: Tensor, valid: Tensor, layout: Layout, nmf: NMFConfig, reference: Tensor
) -> float:
    rows = flatten_posteriors(probs, valid, layout)
    other = activation_observation_scores(rows, fit_nmf(rows.matrix, nmf))
    return spearman(reference[valid], other[valid])


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

    with torch.inference_mode():
        observations = trajectory.observations.flatten(0, 1)
        embeddings = torch.empty(count, steps * batch, sizes.embedding, device=device)
        for i, variant in enumerate(variants):
            weights = {
                n.removeprefix(prefix): t for n, t in variant.items() if n.startswith(prefix)
            }

            def encode(obs: Tensor, weights: Mapping[str, Tensor] = weights) -> Tensor:
                return functional_call(agent.obs_encoder, dict(weights), (obs,))

            _encoded(encode, observations, embeddings[i])
        embeddings = embeddings.reshape(count, steps, batch, -1)
        actions = F.one_hot(trajectory.actions.to(device), sizes.actions).float()  # [L, B, A]
        embed_w = stacked("rssm.fc_embed_state_action.0.weight", True)
        embed_b = stacked("rssm.fc_embed_state_action.0.bias")
        ih_w, ih_b = stacked("rssm.rnn.weight_ih", True), stacked("rssm.rnn.bias_ih")
        hh_w, hh_b = stacked("rssm.rnn.weight_hh", True), stacked("rssm.rnn.bias_hh")
        prior_w = stacked("rssm.fc_prior.0.weight", True)
        prior_b = stacked("rssm.fc_prior.0.bias")
        prior_out_w = stacked("rssm.fc_prior.2.weight", True)
        prior_out_b = stacked("rssm.fc_prior.2.bias")
        post_w = stacked("rssm.fc_posterior.0.weight", True)
        post_b = stacked("rssm.fc_posterior.0.bias")
        out_w = stacked("rssm.fc_posterior.2.weight", True)
        out_b = stacked("rssm.fc_posterior.2.bias")
        stoch = torch.zeros(count, batch, sizes.stoch, device=device)
        deter = torch.zeros(count, batch, sizes.deter, device=device)
        action = torch.zeros(count, batch, sizes.actions, device=device)
        keys = NoiseKeys.from_seeds(list(trajectory.seeds), device)
        # Written in place: lists stacked after the loop held every step twice at the end.
        posterior = torch.empty(count, steps, batch, *latent, device=device)
        samples = torch.empty(count, steps, batch, *latent, device=device)
        deters = torch.empty(count, steps, batch, sizes.deter, device=device)
        noises = keys.draw_steps(agent.noise_streams(), steps)
        for t, noise in zip(range(steps), noises, strict=True):
            x = F.elu(torch.baddbmm(embed_b, torch.cat([stoch, action], dim=-1), embed_w))
            gates_x = torch.baddbmm(ih_b, x, ih_w).chunk(3, dim=-1)
            gates_h = torch.baddbmm(hh_b, deter, hh_w).chunk(3, dim=-1)
            reset = torch.sigmoid(gates_x[0] + gates_h[0])
            update = torch.sigmoid(gates_x[1] + gates_h[1])
            candidate = torch.tanh(gates_x[2] + reset * gates_h[2])
            deter = (1 - update) * candidate + update * deter  # PyTorch's GRUCell
            hidden = F.elu(torch.baddbmm(post_b, torch.cat([deter, embeddings[:, t]], -1), post_w))
            step = torch.baddbmm(out_b, hidden, out_w).reshape(count, batch, *latent)
            sample = (step + noise.gumbel(STREAM_POSTERIOR, latent)[None]).argmax(dim=-1)
            one_hot = F.one_hot(sample, sizes.classes).float()
            stoch = one_hot.flatten(start_dim=2)
            action = actions[t][None].expand(count, -1, -1)
            posterior[:, t], samples[:, t], deters[:, t] = step, one_hot, deter
        del embeddings
        # The prior does not feed the recurrence: all steps at once, after it.
        hidden = F.elu(torch.baddbmm(prior_b, deters.flatten(1, 2), prior_w))
        prior = torch.baddbmm(prior_out_b, hidden, prior_out_w).reshape(posterior.shape)
        del hidden
        return [
            ReplayedLatents(prior[i], posterior[i], samples[i], deters[i]) for i in range(count)
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
    """What one variant of :func:`stacked_replays` holds: its four latents, its embeddings and
    its prior's hidden layer, in float32 bytes."""
    sizes = agent.sizes
    latent = sizes.categoricals * sizes.classes
    per_step = 3 * latent + sizes.deter + sizes.embedding + sizes.node
    return 4 * per_step * trajectory.steps * trajectory.episodes


def streamed_replays(
    agent: DreamerAgent,
    trajectory: Trajectory,
    seeds: Sequence[int],
    chunk_bytes: int = REPLAY_CHUNK_BYTES,
) -> Iterator[ReplayedLatents]:
    """:func:`randomized_replays` made a chunk of seeds at a time, as many as ``chunk_bytes``
    holds (at least one): the next chunk is replayed only when the caller asks for its first
    replay, so a caller that drops each replay before asking for the next holds one chunk.
    The same replays to float rounding (a stacked replay's variants do not interact)."""
    width = max(1, chunk_bytes // max(replay_bytes(agent, trajectory), 1))
    for start in range(0, len(seeds), width):
        chunk = randomized_replays(agent, trajectory, seeds[start : start + width])
        chunk.reverse()
        while chunk:
            yield chunk.pop()


def randomized_spearmans(
    replays: Iterable[ReplayedLatents],
    trajectory: Trajectory,
    valid: Tensor,
    layout: Layout,
    nmf: NMFConfig,
    reference: Tensor,
) -> list[float]:
    """Spearman of the trained activation scores ``reference`` with those of each randomized
    replay's posteriors (:func:`randomized_replays`; scaled to the trained spread, refitted).

    Shape:
        - valid, reference: ``[L, B]``
    """
    values = []
    for replay in replays:
        logits = replay.posterior_logits
        posterior = match_scale(logits, trajectory.posterior_logits.to(logits.device), valid)
        del replay, logits  # before the fit and the next replay (:func:`streamed_replays`)
        probs = torch.softmax(posterior, dim=-1)
        del posterior
        values.append(_spearman_of(probs, valid, layout, nmf, reference))
        del probs
    return values


def memory_spearmans(
    agent: DreamerAgent,
    trajectory: Trajectory,
    valid: Tensor,
    layout: Layout,
    nmf: NMFConfig,
    reference: Tensor,
    seeds: Sequence[int],
) -> list[float]:
    """Spearman of the trained activation scores ``reference`` with those of the posteriors
    computed from each step's observation and another valid step's deterministic state (a
    seeded permutation of the valid steps per seed).

    Shape:
        - valid, reference: ``[L, B]``
    """
    device = agent.device
    steps, episodes = valid.shape
    with torch.inference_mode():
        observations = trajectory.observations.flatten(0, 1)
        embeddings = torch.empty(observations.shape[0], agent.sizes.embedding, device=device)
        _encoded(agent.encode, observations, embeddings)
    deter = trajectory.deter.to(device).flatten(0, 1)
    rows = torch.nonzero(valid.flatten().to(device)).flatten()
    values = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        source = torch.arange(deter.shape[0], device=device)
        source[rows] = rows[torch.randperm(len(rows), generator=generator).to(device)]
        sizes = agent.sizes
        logits = torch.empty(len(source), sizes.categoricals, sizes.classes, device=device)
        with torch.inference_mode():  # in chunks: a posterior's sample of every row at once
            for part in torch.split(torch.arange(len(source), device=device), _ENCODE_ROWS):
                logits[part] = agent.posterior(deter[source[part]], embeddings[part]).logits
        probs = torch.softmax(logits.reshape(steps, episodes, *logits.shape[1:]), dim=-1)
        del logits
        values.append(_spearman_of(probs.to(valid.device), valid, layout, nmf, reference))
        del probs
    return values


def sanity_budget(nmf: NMFConfig, iterations: int) -> NMFConfig:
    """The refits compare scores only: the iteration budget the main fit needed, not the cap."""
    return dataclasses.replace(nmf, max_iter=max(iterations, 10))


@dataclass(frozen=True)
class PosteriorSanity:
    """The posterior sanity checks' ``|rho|`` per seed (NaN where a score is constant).

    Attributes:
        randomized: one per permutation seed of the weights.
        memory: one per shuffle of the deterministic states.
    """

    randomized: tuple[float, ...] = ()
    memory: tuple[float, ...] = ()

    def metrics(self) -> dict[str, float]:
        """The :class:`~pytest_dreamer_audit.results.values.TrustMetrics` fields they give:
        the largest, the mean and (randomized) the standard deviation over the seeds."""

        def stat(values: tuple[float, ...], how: Callable[[np.ndarray], float]) -> float:
            return float(how(np.asarray(values))) if values else math.nan

        return {
            "sanity_posterior_max_abs": stat(self.randomized, np.max),
            "sanity_posterior_mean_abs": stat(self.randomized, np.mean),
            "sanity_posterior_std": stat(self.randomized, np.std),
            "memory_max_abs": stat(self.memory, np.max),
            "memory_mean_abs": stat(self.memory, np.mean),
        }


def measure_posterior_sanity(
    agent: DreamerAgent,
    trajectory: Trajectory,
    valid: Tensor,
    layout: Layout,
    nmf: NMFConfig,
    reference: Tensor,
    replays: Iterable[ReplayedLatents],
    *,
    first: float | None = None,
    memory_seeds: Sequence[int] = tuple(range(MEMORY_SEEDS)),
) -> PosteriorSanity:
    """Both posterior sanity checks.

    Args:
        replays: the randomized replays, one per permutation seed (:func:`randomized_replays`,
            or :func:`streamed_replays` to hold one chunk at a time); without the first seed's
            when ``first`` is given.
        first: the first seed's Spearman when already computed (the pipeline's full
            randomization stage scores that replay); None scores every replay.
        memory_seeds: the shuffles of the memory check.

    Shape:
        - valid, reference: ``[L, B]``
    """
    scored = randomized_spearmans(replays, trajectory, valid, layout, nmf, reference)
    randomized = [first, *scored] if first is not None else scored
    memory = memory_spearmans(agent, trajectory, valid, layout, nmf, reference, memory_seeds)
    return PosteriorSanity(tuple(map(abs, randomized)), tuple(map(abs, memory)))
