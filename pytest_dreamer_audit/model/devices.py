"""Turn a user's device setting into a ``torch.device``, with errors that say how to fix it."""

from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = ["apply_threads", "resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when present else CPU; ``"cuda"`` without CUDA is an error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(
            f"device {device!r} is not a torch device ({error}); use 'auto', 'cpu' or 'cuda[:N]'"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r} asks for CUDA, but torch {torch.__version__} sees no CUDA GPU; "
                "use 'cpu' or 'auto' (which falls back to the CPU)"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) "
                "are visible; pick an index below that"
            )
    elif resolved.type != "cpu":
        raise ConfigError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda[:N]'")
    return resolved


def apply_threads(threads: int) -> None:
    """Use ``threads`` torch threads for intra-op work in this process (``--dreamer-threads``)."""
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
