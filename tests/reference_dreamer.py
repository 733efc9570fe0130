"""An independent, functional re-implementation of the reference forward pass, for comparison.

Written from ``checkpoint-format.md`` with plain tensor ops on the state_dicts (the GRU cell by
its equations), so it shares no code with the package's modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

StateDicts = dict[str, dict[str, Tensor]]


def encode(sd: StateDicts, obs: Tensor) -> Tensor:
    p = sd["ObsEncoder"]
    x = obs
    for i in (0, 2, 4):
        x = F.elu(F.conv2d(x, p[f"convolutions.{i}.weight"], p[f"convolutions.{i}.bias"]))
    x = x.reshape(x.shape[0], -1)
    if "fc_1.weight" in p:
        x = x @ p["fc_1.weight"].T + p["fc_1.bias"]
    return x


def gru(p: dict[str, Tensor], x: Tensor, h: Tensor) -> Tensor:
    gi = x @ p["rnn.weight_ih"].T + p["rnn.bias_ih"]
    gh = h @ p["rnn.weight_hh"].T + p["rnn.bias_hh"]
    ir, iz, in_ = gi.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


def mlp(p: dict[str, Tensor], prefix: str, x: Tensor, layers: int) -> Tensor:
    for i in range(layers):
        x = x @ p[f"{prefix}.{2 * i}.weight"].T + p[f"{prefix}.{2 * i}.bias"]
        if i < layers - 1:
            x = F.elu(x)
    return x


def rssm_step(
    sd: StateDicts, stoch: Tensor, deter: Tensor, action: Tensor, embed: Tensor, nonterm: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (deter', prior_logit, post_logit), logits flat ``[B, stoch]``."""
    p = sd["RSSM"]
    x = F.elu(
        torch.cat([stoch * nonterm, action], dim=-1) @ p["fc_embed_state_action.0.weight"].T
        + p["fc_embed_state_action.0.bias"]
    )
    new_deter = gru(p, x, deter * nonterm)
    prior = mlp(p, "fc_prior", new_deter, 2)
    post = mlp(p, "fc_posterior", torch.cat([new_deter, embed], dim=-1), 2)
    return new_deter, prior, post


def actor_logits(sd: StateDicts, deter: Tensor, stoch: Tensor) -> Tensor:
    p = sd["ActionModel"]
    layers = len([k for k in p if k.endswith(".weight")])
    return mlp(p, "model", torch.cat([deter, stoch], dim=-1), layers)
