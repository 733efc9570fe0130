"""The pieces every figure is built of: coloured blocks, framed tiles, legends, colour bars.

Blocks are float RGB in [0, 1] until :class:`~.canvas.Canvas` rounds them to bytes.
"""

from __future__ import annotations

import numpy as np

from ..games import GAMES
from ..results.explanation import Explanation
from .canvas import BASE_FONT, DPI, Box, Canvas, to_uint8
from .glyphs import face, text_mask

__all__ = [
    "CHANNEL_NAMES",
    "belief_rgb",
    "colorbar",
    "colormap",
    "legend",
    "observation_rgb",
    "observed_channels",
    "scaled",
    "tiles",
]

CHANNEL_NAMES: dict[str, tuple[str, ...]] = {
    name: spec.channel_names for name, spec in GAMES.items()
}
"""MinAtar's channel names of each game (full MDP channel order, as in ``Env.channels``), from
``games.py``."""

# One colour per MinAtar channel index, distinct on the black background (Trubetskoy's palette).
_CHANNEL_PALETTE = "ffe119 e6194b 3cb44b 42d4f4 f58231 f032e6 bfef45 fabed4 4363d8 dcbeff"
CHANNEL_HEX = tuple(f"#{colour}" for colour in _CHANNEL_PALETTE.split())
_CHANNEL_RGB = np.array([[int(h[i : i + 2], 16) / 255 for i in (1, 3, 5)] for h in CHANNEL_HEX])
MARGIN_PX, FRAME_PX = 3, 3  # white margin, then a frame (red on highlighted rows)
_DARK_BOX = Box("#000000", 1.5)


def observation_rgb(observations: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    """Colour observations: black background, one colour per MinAtar channel.

    Where channels overlap, the lowest MinAtar channel index wins (the player is channel 0 in
    every game, so it stays visible).

    Shape:
        - observations: ``[N, channels, 10, 10]`` bool; ``channels`` gives each one's MinAtar index
        - output: ``[N, 10, 10, 3]`` float in [0, 1]
    """
    obs = np.asarray(observations, dtype=bool)
    palette = _CHANNEL_RGB[np.asarray(channels, dtype=np.int64) % len(_CHANNEL_RGB)]
    rgb = palette[obs.argmax(axis=1)]  # argmax: the first channel present at each pixel
    rgb[~obs.any(axis=1)] = 0.0
    return rgb


def belief_rgb(values: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    """Colour decoded observations: each channel's colour weighted by its decoded value (clipped
    to [0, 1]), summed and clipped, on black; a confident belief looks like the observation.

    Shape:
        - values: ``[N, channels, 10, 10]`` float; output: ``[N, 10, 10, 3]`` in [0, 1]
    """
    palette = _CHANNEL_RGB[np.asarray(channels, dtype=np.int64) % len(_CHANNEL_RGB)]
    weights = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    return np.clip(np.einsum("nchw,cr->nhwr", weights, palette), 0.0, 1.0)


def scaled(blocks: np.ndarray, height: int) -> np.ndarray:
    """Nearest-neighbour resize of ``[N, h, w, 3]`` blocks to ``height`` rows, same aspect."""
    h, w = blocks.shape[1:3]
    if height % h == 0:  # a whole factor: repeat, twice as fast as indexing
        return np.repeat(np.repeat(blocks, height // h, axis=1), height // h, axis=2)
    width = max(1, round(w * height / h))
    return blocks[:, np.arange(height) * h // height][:, :, np.arange(width) * w // width]


def tiles(blocks: np.ndarray, frames: np.ndarray, band: int = 0) -> np.ndarray:
    """Scale each block to its final size first (:func:`scaled`), then frame it here (colour
    ``frames[i]``) inside a white margin, ``band`` white rows under.

    Works in bytes: floats are rounded first (:func:`~.canvas.to_uint8`), which gives the same
    pixels as rounding after nearest-neighbour scaling, on an eighth of the memory.

    Shape:
        - blocks: ``[N, h, w, 3]`` float in [0, 1] or uint8; frames: ``[N, 3]`` likewise
        - output: ``[N, h + 2 p + band, w + 2 p, 3]`` uint8 with ``p = margin + frame``
    """
    n, h, w, _ = blocks.shape
    m, p = MARGIN_PX, MARGIN_PX + FRAME_PX
    out = np.full((n, h + 2 * p + band, w + 2 * p, 3), 255, dtype=np.uint8)
    out[:, m : h + 2 * p - m, m : w + 2 * p - m] = to_uint8(frames)[:, None, None, :]
    out[:, p : p + h, p : p + w] = to_uint8(blocks)
    return out


def colormap(name: str, values: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``[...]`` values in [0, 1] -> ``[..., 3]`` RGB of matplotlib colormap ``name``."""
    import matplotlib

    return np.asarray(matplotlib.colormaps[name](np.clip(values, 0.0, 1.0) ** gamma))[..., :3]


def observed_channels(explanation: Explanation) -> tuple[int, ...]:
    """The MinAtar index of each observation channel of ``explanation`` (its game's observed
    channels, or ``0 .. channels - 1`` for an unknown game)."""
    spec = GAMES.get(explanation.game)
    count = explanation.observations.shape[2]
    observed = spec.observed_channels(explanation.pomdp) if spec else ()
    return tuple(observed) if len(observed) == count else tuple(range(count))


def legend(canvas: Canvas, explanation: Explanation, y: int) -> None:
    """The colour and name of each observed channel (``Explanation.observation_channels``),
    wrapped onto a second line when needed."""
    font = face("sans-serif", BASE_FONT, "normal", DPI)
    x = 15
    names = explanation.observation_channels
    for channel, name in zip(observed_channels(explanation), names, strict=True):
        label = f"\u25a0 {name}"
        width = text_mask(font, label).width + 14  # the box's padding, then a gap
        if x + width > canvas.width:
            x, y = 15, y + 17
        colour = CHANNEL_HEX[channel % len(CHANNEL_HEX)]
        canvas.text(x, y, label, color=colour, va="top", bbox=_DARK_BOX)
        x += width


def colorbar(canvas: Canvas, cmap: str, gamma: float, x: int, y: int, width: int) -> None:
    """A horizontal colour scale from 0 to 1, 8 pixels high, its tick labels under it."""
    ramp = colormap(cmap, np.linspace(0.0, 1.0, width) ** (1 / gamma), gamma)
    canvas.image(np.broadcast_to(ramp, (8, width, 3)), x, y)
    for value in (0.0, 0.25, 1.0) if gamma < 1 else (0.0, 0.5, 1.0):
        x_tick = x + value**gamma * (width - 1)
        canvas.text(x_tick, y + 10, f"{value:g}", -1.5, ha="center", va="top")
