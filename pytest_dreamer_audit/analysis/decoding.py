"""What the world model believes it sees: observations decoded from latent states.

The checkpoint's ``ObsDecoder`` maps a model state ``cat[deter, stoch]`` to the mean of each
pixel. Two views use it:

- **beliefs**: for every step, the decoder's reconstruction from the deterministic state and the
  posterior's most likely class of each categorical (what the model believes the screen shows
  after seeing it; next to the real observation in the rollout grids);
- **decoded factors**: for each factor, the latent of its best dataset example with the factor's
  prototype written into it, decoded. Pooled layout (a prototype is a distribution over one
  categorical's K classes): the example's categorical that excites the factor most is set to
  the prototype's peak class. Per-step layout (a prototype spans all C x K): every categorical is
  set to its block's peak class. The deterministic state stays the example's: the picture shows
  what the factor's code means in the context where it is strongest.

A checkpoint without an ``ObsDecoder`` has no views (an error says so).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..model.agent import DreamerAgent, LatentState
from .trust import mode_one_hot

__all__ = ["decoded_beliefs", "decoded_factors"]


def _decoder(agent: DreamerAgent) -> torch.nn.Module:
    if agent.obs_decoder is None:
        raise ConfigError(
            "the decoded views need the checkpoint's ObsDecoder, which this checkpoint does not "
            "carry; leave decoded off"
        )
    return agent.obs_decoder


def _decode(agent: DreamerAgent, stoch: Tensor, deter: Tensor) -> np.ndarray:
    """``[N, C, K]`` one-hot stoch and ``[N, D]`` deter -> ``[N, channels, 10, 10]`` float32."""
    decoder = _decoder(agent)
    device = agent.device
    with torch.inference_mode():
        state = LatentState(stoch.to(device), stoch.to(device), deter.to(device)).model_state
        return decoder(state).float().cpu().numpy()


def decoded_beliefs(
    agent: DreamerAgent, deter: Tensor, posterior_logits: Tensor, valid: Tensor
) -> np.ndarray:
    """The decoder's reconstruction at every valid step (zeros elsewhere).

    Shape:
        - deter: ``[L, B, D]``; posterior_logits: ``[L, B, C, K]``; valid: ``[L, B]``
        - output: ``[L, B, channels, 10, 10]`` float32
    """
    steps, episodes = posterior_logits.shape[:2]
    mask = valid.bool().cpu()
    mode = mode_one_hot(posterior_logits.float()).cpu()
    out = np.zeros((steps, episodes, agent.sizes.channels, 10, 10), dtype=np.float32)
    if bool(mask.any()):
        out[mask.numpy()] = _decode(agent, mode[mask], deter.cpu()[mask])
    return out


def decoded_factors(
    agent: DreamerAgent,
    deter: Tensor,
    posterior_logits: Tensor,
    prototypes: np.ndarray,
    examples: np.ndarray,
    strongest: np.ndarray,
) -> np.ndarray:
    """Each factor's prototype decoded in the context of its best example (module docstring).

    Args:
        deter, posterior_logits: ``[L, B, D]`` and ``[L, B, C, K]`` of the rollouts.
        prototypes: ``[r, K]`` (pooled) or ``[r, C * K]`` (per step).
        examples: ``[r, k, 2]`` each factor's (step, episode) picks, best first.
        strongest: ``[r]`` pooled: the categorical of the best example that excites the factor
            most; per step: -1.

    Shape:
        - output: ``[r, channels, 10, 10]`` float32 (zeros for a factor without examples)
    """
    _, _, categoricals, classes = posterior_logits.shape
    rank = prototypes.shape[0]
    out = np.zeros((rank, agent.sizes.channels, 10, 10), dtype=np.float32)
    present = [j for j in range(rank) if examples[j, 0, 0] >= 0]
    if not present:
        return out
    stochs, deters = [], []
    for j in present:
        t, b = (int(v) for v in examples[j, 0])
        stoch = mode_one_hot(posterior_logits[t, b].float())
        if strongest[j] >= 0:
            stoch[int(strongest[j])] = 0.0
            stoch[int(strongest[j]), int(np.argmax(prototypes[j]))] = 1.0
        else:
            peaks = torch.as_tensor(prototypes[j].reshape(categoricals, classes).argmax(-1))
            stoch = torch.nn.functional.one_hot(peaks, classes).float()
        stochs.append(stoch.cpu())
        deters.append(deter[t, b].cpu())
    out[present] = _decode(agent, torch.stack(stochs), torch.stack(deters))
    return out
