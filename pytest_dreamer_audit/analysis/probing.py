"""The inputs of the fact probes (``results/probes.py``): the trained latents and their controls,
taken from a trajectory at the analysed steps."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..results.explanation import Explanation
from ..results.probes import ProbeRow, probe_table
from ..results.semantics import table_facts
from ..rollout.rollouts import Trajectory

__all__ = ["probe_facts"]


def _rows(tensor: Tensor, valid: Tensor) -> np.ndarray:
    """``[L, B, ...]`` -> ``[n, features]`` float64 at the valid steps (time-major)."""
    picked = tensor[valid.to(tensor.device)]
    return picked.reshape(picked.shape[0], -1).double().cpu().numpy()


def probe_facts(
    explanation: Explanation,
    trajectory: Trajectory,
    valid: Tensor,
    randomized_probs: Tensor,
    randomized_deter: Tensor,
) -> tuple[ProbeRow, ...]:
    """Probe every fact of the explanation's table from the trained posterior (probabilities),
    the deterministic state, both, the randomized network's both (``randomized_probs``
    ``[L, B, C, K]`` and ``randomized_deter`` ``[L, B, D]`` on the same observations), the raw
    observation and the one-hot time step."""
    posterior = _rows(trajectory.posterior_probs, valid)
    deter = _rows(trajectory.deter, valid)
    steps, episodes = np.nonzero(explanation.valid)
    time = np.eye(explanation.steps)[steps]
    inputs = {
        "posterior": posterior,
        "deter": deter,
        "posterior+deter": np.hstack([posterior, deter]),
        "random posterior+deter": np.hstack(
            [_rows(randomized_probs, valid), _rows(randomized_deter, valid)]
        ),
        "observation": _rows(trajectory.observations.to(torch.float32), valid),
        "time step": time,
    }
    facts = [
        (name, values[explanation.valid].astype(bool if event else np.float64), event)
        for name, values, event in table_facts(explanation)
    ]
    return tuple(probe_table(inputs, facts, episodes))
