"""A figure as one RGB array: images copied in, text blended from glyph masks, PNG out.

Drawing a rollout grid through matplotlib's figure machinery cost ~0.6 s, mostly text layout
and glyph rasterisation per draw; the same figure composed here costs a few tens of ms (see
``benchmarks/bench/render.py``). Pixel positions are whole pixels from the top-left corner.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError
from .glyphs import Align, face, text_mask

__all__ = [
    "BASE_FONT",
    "DPI",
    "PNG_LEVEL",
    "Box",
    "Canvas",
    "VAlign",
    "encode_png",
    "rgb8",
    "to_uint8",
]

VAlign = Literal["top", "center", "bottom", "baseline"]
_VALIGNS = ("top", "center", "bottom", "baseline")

DPI = 100
"""Figures are laid out in pixels at this resolution (1 inch = ``DPI`` pixels; a point of text
is ``DPI / 72`` pixels)."""
BASE_FONT = 7.5
"""Points of the base font; ``Canvas.text`` sizes are relative to it."""
PNG_LEVEL = 3
"""zlib level of the PNG files (:func:`encode_png`). Measured on one core of a loaded 2-CPU
VM, best of 5, on a 50-step rollout grid with C = K = 32 (561 x 3950 RGB, 6.65 MB raw) and a
10-factor, 8-example gallery (1136 x 1136):

=====================  ==============  ==============
encoder, level          grid            gallery
=====================  ==============  ==============
unfiltered, 0           15 ms, 6.65 MB  14 ms, 3.87 MB
unfiltered, 1           21 ms, 322 kB   14 ms, 146 kB
unfiltered, 2           23 ms, 309 kB   11 ms, 142 kB
unfiltered, 3           30 ms, 295 kB   11 ms, 124 kB
unfiltered, 4           74 ms, 299 kB   32 ms, 133 kB
unfiltered, 6           73 ms, 262 kB   41 ms, 93 kB
unfiltered, 9           343 ms, 223 kB  196 ms, 77 kB
Pillow, 1               114 ms, 382 kB  49 ms, 109 kB
Pillow, 6               140 ms, 337 kB  90 ms, 90 kB
=====================  ==============  ==============

Level 3: within ~8 ms of the fastest level on the grid for files 8-15% smaller (reports embed
the compact figures as base64), where level 4 and up cost 2-10 times as much time. Pillow's
encoder tries all five PNG filters per row, which is where its extra time goes."""


@dataclass(frozen=True)
class Box:
    """A filled rectangle behind a text: its colour and its padding around the text's box."""

    colour: str = "#000000"
    pad: float = 1.5
    """Points, like matplotlib's ``bbox=dict(pad=...)``."""


@lru_cache(maxsize=64)
def rgb8(colour: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` (or a matplotlib colour name) -> 0..255 RGB."""
    if len(colour) == 7 and colour.startswith("#"):
        return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
    from matplotlib.colors import to_rgb

    red, green, blue = to_rgb(colour)
    return (round(red * 255), round(green * 255), round(blue * 255))


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` floats in [0, 1] -> uint8, rounded (uint8 input is returned as it is)."""
    if rgb.dtype == np.uint8:
        return rgb
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


class Canvas:
    """A white figure of ``width x height`` pixels, drawn in place.

    Shape:
        - pixels: ``[height, width, 3]`` uint8
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = int(width), int(height)
        self.pixels = np.full((self.height, self.width, 3), 255, dtype=np.uint8)

    def _clip(self, x: int, y: int, h: int, w: int) -> tuple[slice, slice, slice, slice] | None:
        """Canvas and source slices of a ``h x w`` patch at (x, y), cut to the canvas."""
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return slice(y0, y1), slice(x0, x1), slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)

    def image(self, rgb: np.ndarray, x: int, y: int) -> None:
        """Copy ``[h, w, 3]`` pixels (floats in [0, 1] or uint8) with their top-left at (x, y)."""
        cut = self._clip(int(x), int(y), rgb.shape[0], rgb.shape[1])
        if cut is not None:
            rows, columns, source_rows, source_columns = cut
            self.pixels[rows, columns] = to_uint8(rgb[source_rows, source_columns])

    def fill(self, x: int, y: int, width: int, height: int, colour: str) -> None:
        """Paint a rectangle with its top-left at (x, y)."""
        cut = self._clip(int(x), int(y), int(height), int(width))
        if cut is not None:
            self.pixels[cut[0], cut[1]] = rgb8(colour)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 0.0,
        *,
        ha: Align = "left",
        va: VAlign = "baseline",
        color: str = "#000000",
        family: str = "sans-serif",
        fontweight: str = "normal",
        linespacing: float = 1.2,
        bbox: Box | None = None,
    ) -> None:
        """Text anchored at pixel (x, y) as matplotlib's ``Figure.text`` anchors it, ``size``
        points larger than :data:`BASE_FONT`; multi-line texts align each line by ``ha``."""
        if va not in _VALIGNS:
            raise ConfigError(
                f"vertical alignment must be one of {', '.join(_VALIGNS)}, got {va!r}"
            )
        font = face(family, BASE_FONT + size, fontweight, DPI)
        mask = text_mask(font, text, linespacing=linespacing, align=ha)
        left = x - {"left": 0.0, "center": mask.width / 2, "right": float(mask.width)}[ha]
        top = (
            y
            - {
                "top": 0.0,
                "center": mask.height / 2,
                "bottom": float(mask.height),
                "baseline": float(mask.baseline),
            }[va]
        )
        left, top = round(left), round(top)
        if bbox is not None:
            pad = round(bbox.pad * DPI / 72)
            width, height = mask.width + 2 * pad, mask.height + 2 * pad
            self.fill(left - pad, top - pad, width, height, bbox.colour)
        self.blend(mask.alpha, left - mask.left, top - mask.top, color)

    def blend(self, alpha: np.ndarray, x: int, y: int, colour: str) -> None:
        """Paint ``colour`` through ``[h, w]`` uint8 coverage with its top-left at (x, y)."""
        cut = self._clip(x, y, alpha.shape[0], alpha.shape[1])
        if cut is None:
            return
        rows, columns, source_rows, source_columns = cut
        cover = alpha[source_rows, source_columns, None].astype(np.uint16)
        target = self.pixels[rows, columns].astype(np.uint16)
        ink = np.asarray(rgb8(colour), dtype=np.uint16)
        # target + (ink - target) * cover / 255, rounded, in integers: (x + 127) // 255
        mixed = target * (255 - cover) + ink * cover + 127
        self.pixels[rows, columns] = mixed // 255

    def png(self, path: str | os.PathLike[str] | None = None) -> bytes:
        """The PNG file's bytes (see :func:`encode_png`), also written to ``path``."""
        data = encode_png(self.pixels)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
        return data


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """A PNG file of ``[h, w, 3]`` uint8 RGB: rows unfiltered, zlib at ``level``, :data:`DPI`
    recorded in a ``pHYs`` chunk.

    Why not Pillow: its encoder chooses a filter per row by trying all five, which took 4 times
    as long on a rollout grid (see :data:`PNG_LEVEL`) and made larger files: these figures
    repeat each row of a block many times, which zlib finds within its window when rows are left
    unfiltered.
    """
    height, width, _ = pixels.shape
    raw = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # filter byte 0 (None), then RGB
    raw[:, 1:] = pixels.reshape(height, 3 * width)
    per_metre = round(DPI / 0.0254)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
            _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )
