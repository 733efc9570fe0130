"""Counter-based random numbers: reproducible per episode, whatever the batch and the device.

A rollout of four episodes in one batch must sample exactly what four single-episode rollouts
with the same seeds sample, on CPU and on GPU alike. A shared ``torch.Generator`` cannot give
that (its stream depends on the batch layout and the device), so each draw is a pure function of
``(episode key, step, stream, element index)``: a 32-bit integer hash (the murmur3 finalizer)
computed with int64 tensor ops, turned into a uniform and then into Gumbel noise. Sampling a
categorical by ``argmax(logits + gumbel)`` is exact (the Gumbel-max trick).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MAX_SEED", "NoiseKeys", "gumbel_argmax"]

MAX_SEED = 2**32 - 1
"""Seeds are 32-bit, as NumPy's ``RandomState`` (which MinAtar uses) requires."""

_MASK = 0xFFFFFFFF


def _mix32(x: Tensor) -> Tensor:
    """murmur3's 32-bit finalizer on int64 tensors holding values in ``[0, 2**32)``."""
    # Products overflow int64 for large x; the low 32 bits (all we keep) are still exact.
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & _MASK
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & _MASK
    return x ^ (x >> 16)


@dataclass(frozen=True)
class NoiseKeys:
    """Per-episode keys of the counter-based generator, and the step they are at.

    Attributes:
        keys: ``[B]`` int64, one key per episode (its seed), values in ``[0, 2**32)``.
        step: the counter; ``advance()`` returns the keys of the next step.
    """

    keys: Tensor
    step: int = 0

    @classmethod
    def from_seeds(cls, seeds: list[int], device: torch.device | str = "cpu") -> NoiseKeys:
        """Keys for episodes with these seeds (each in ``[0, MAX_SEED]``)."""
        return cls(torch.tensor(seeds, dtype=torch.int64, device=device) & _MASK, 0)

    def advance(self) -> NoiseKeys:
        """The keys of the next step."""
        return NoiseKeys(self.keys, self.step + 1)

    def uniform(self, stream: int, shape: tuple[int, ...]) -> Tensor:
        """Uniform numbers in the open interval (0, 1), 23 bits of resolution.

        Shape:
            - output: ``[B, *shape]`` float32 on the keys' device
        """
        count = 1
        for side in shape:
            count *= side
        counter = (self.step * 0x9E3779B1 + stream * 0x7F4A7C15) & _MASK
        base = _mix32((_mix32(self.keys) + counter) & _MASK)
        index = torch.arange(count, device=self.keys.device, dtype=torch.int64)
        bits = _mix32((base[:, None] + index[None, :] * 0x632BE5AB) & _MASK)
        bits = _mix32(bits ^ base[:, None])
        # 23 bits keep (bits + 0.5) / 2**23 strictly inside (0, 1) in float32.
        uniform = ((bits >> 9).to(torch.float32) + 0.5) * (1.0 / 2**23)
        return uniform.reshape(self.keys.shape[0], *shape)

    def gumbel(self, stream: int, shape: tuple[int, ...]) -> Tensor:
        """Standard Gumbel noise ``-log(-log(u))``, shape ``[B, *shape]``."""
        return -torch.log(-torch.log(self.uniform(stream, shape)))


def gumbel_argmax(logits: Tensor, noise: NoiseKeys | None, stream: int) -> Tensor:
    """Sample class indices from ``softmax(logits)`` along the last axis.

    With ``noise`` None the draw uses torch's global generator (for training); otherwise it is
    the deterministic function of the keys described in the module docstring.

    Shape:
        - logits: ``[B, ..., K]``
        - output: ``[B, ...]`` int64
    """
    if noise is None:
        uniform = torch.rand_like(logits).clamp_(min=torch.finfo(logits.dtype).tiny)
        gumbel = -torch.log(-torch.log(uniform))
    else:
        gumbel = noise.gumbel(stream, tuple(logits.shape[1:])).to(logits.dtype)
    return torch.argmax(logits + gumbel, dim=-1)
