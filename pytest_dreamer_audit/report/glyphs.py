"""Text as coverage masks, blitted from glyph bitmaps that are rendered once per font face.

matplotlib lays out and rasterises every glyph of every text each time a figure is drawn, which
was most of the time of a rollout grid. Here FreeType (matplotlib's ``FT2Font``, the rasteriser
its Agg backend uses, with the same default hinting) renders each glyph of a face once, on first
use, into a cache (:func:`glyph`); a text is then a few NumPy slice operations per glyph. Glyphs
sit at whole-pixel pen positions (hinted advances are whole pixels), kerned as matplotlib kerns
them; line spacing follows ``matplotlib.text.Text`` (3.11): each line is ``linespacing`` times
the font's typographic height, its baseline centred by the font's ascent and descent.

The caches hold pure derived data (bitmaps and metrics of a font file at a size), so they are
safe to share; FreeType faces are not thread-safe, so rendering a glyph holds a lock.
matplotlib is imported inside the functions, so importing this module costs only NumPy.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.ft2font import FT2Font, GlyphIndexType

__all__ = ["Align", "Face", "Glyph", "TextMask", "face", "glyph", "text_mask"]

Align = Literal["left", "center", "right"]
_ALIGNS = ("left", "center", "right")
_KERNED = "".join(map(chr, range(32, 127)))  # kerning is looked up among printable ASCII
_FREETYPE = threading.Lock()


@dataclass(frozen=True)
class Glyph:
    """One rasterised glyph.

    Shape:
        - alpha: ``[h, w]`` uint8 coverage (255 = fully inked); ``[0, 0]`` for a space
    """

    alpha: np.ndarray
    left: int
    """Columns from the pen position to the bitmap's first column."""
    top: int
    """Rows from the bitmap's first row down to the baseline."""
    advance: int
    """Pixels the pen moves after the glyph (hinted, whole pixels)."""


@dataclass(frozen=True)
class Face:
    """One font file at one size and resolution: its line metrics and kerning."""

    path: str
    size: float
    """Points."""
    dpi: int
    ascent: float
    """The font's typographic ascent (OS/2 table), pixels: matplotlib's line metric."""
    descent: float
    """The font's typographic descent, pixels (positive)."""
    kerning: Mapping[tuple[str, str], int]
    """Nonzero kerning of character pairs (printable ASCII), pixels (a plain dict: this is
    read per glyph; treat it as read-only)."""

    def glyph(self, char: str) -> Glyph:
        """The glyph of ``char`` in this face (rendered on first use, then cached)."""
        return glyph(self.path, self.size, self.dpi, char)


@dataclass(frozen=True)
class TextMask:
    """A laid-out text: its coverage, with its layout box inside.

    The box spans the lines' advances horizontally and ``lines x linespacing`` font heights
    vertically (what matplotlib aligns with ``ha`` and ``va``); ink may spill a pixel or two
    outside it, so the mask covers the union of the box and the ink.

    Shape:
        - alpha: ``[rows, columns]`` uint8, at least ``[height, width]``
    """

    alpha: np.ndarray
    left: int
    """Columns from the mask's left edge to the box's."""
    top: int
    """Rows from the mask's top edge to the box's."""
    width: int
    height: int
    baseline: int
    """Rows from the box's top to the first line's baseline."""


@lru_cache(maxsize=32)
def _font(path: str, size: float, dpi: int) -> FT2Font:
    from matplotlib.ft2font import FT2Font

    font = FT2Font(path)
    font.set_size(size, dpi)
    return font


@lru_cache(maxsize=8192)
def glyph(path: str, size: float, dpi: int, char: str) -> Glyph:
    """The bitmap and metrics of ``char`` in font file ``path`` at ``size`` points, ``dpi``."""
    from matplotlib.ft2font import LoadFlags

    with _FREETYPE:
        font = _font(path, size, dpi)
        loaded = font.load_char(ord(char), LoadFlags.DEFAULT)
        x_min, y_min, x_max, y_max = loaded.bbox  # 26.6 fixed point, y up from the baseline
        top = -(-y_max // 64)  # FreeType's bitmap starts at the ceiling of the box's top
        shift = max(2, 2 - x_min // 64)  # room for ink hanging left of the pen
        alpha = np.zeros((top - y_min // 64 + 2, shift - (-x_max // 64) + 2), dtype=np.uint8)
        font.draw_glyph_to_bitmap(alpha, shift, 0, loaded)  # bitmap at (shift + its left, 0)
    advance = round(loaded.horiAdvance / 64)
    rows, columns = np.nonzero(alpha)
    if not len(rows):  # a space: no ink, only an advance
        return Glyph(np.zeros((0, 0), np.uint8), 0, 0, advance)
    r0, c0 = int(rows.min()), int(columns.min())
    crop = alpha[r0 : rows.max() + 1, c0 : columns.max() + 1].copy()
    return Glyph(crop, c0 - shift, top - r0, advance)


@lru_cache(maxsize=8)
def _kerned_pairs(path: str) -> Mapping[tuple[str, str], tuple[GlyphIndexType, GlyphIndexType]]:
    """The printable ASCII pairs that font file ``path`` kerns at all (in font units, which
    do not depend on the size, so the 95 x 95 lookups happen once per file), with their glyph
    indices."""
    from matplotlib.ft2font import FaceFlags, FT2Font, Kerning

    font = FT2Font(path)
    if not font.face_flags & FaceFlags.KERNING or font.face_flags & FaceFlags.FIXED_WIDTH:
        return MappingProxyType({})
    index = {char: font.get_char_index(ord(char)) for char in _KERNED}
    return MappingProxyType(
        {
            (left, right): (index[left], index[right])
            for left in _KERNED
            for right in _KERNED
            if font.get_kerning(index[left], index[right], Kerning.UNSCALED)
        }
    )


@lru_cache(maxsize=64)
def face(family: str, size: float, weight: str = "normal", dpi: int = 100) -> Face:
    """matplotlib's font for ``family`` (e.g. ``"sans-serif"``, ``"monospace"``) and
    ``weight`` at ``size`` points."""
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import Kerning

    path = findfont(FontProperties(family=[family], weight=weight))
    pairs = _kerned_pairs(path)
    with _FREETYPE:
        font = _font(path, size, dpi)
        table = font.get_sfnt_table("OS/2")
        ascent, descent = (
            (table["sTypoAscender"], -table["sTypoDescender"])
            if table is not None
            else (font.ascender, -font.descender)
        )
        # Grid-fitted, as matplotlib kerns (whole pixels, in 26.6 fixed point).
        fitted = {pair: font.get_kerning(*index, Kerning.DEFAULT) for pair, index in pairs.items()}
        per_em = font.units_per_EM
    kerning = {pair: round(value / 64) for pair, value in fitted.items() if round(value / 64)}
    scale = size * dpi / 72 / per_em  # pixels per font unit
    return Face(path, size, dpi, ascent * scale, descent * scale, kerning)


def _line_width(
    glyphs: Mapping[str, Glyph], kerning: Mapping[tuple[str, str], int], line: str
) -> int:
    width = sum(glyphs[char].advance for char in line)
    return width + sum(kerning.get(pair, 0) for pair in pairwise(line))


_MASKS: dict[tuple[str, float, int, str, float, str], TextMask] = {}
_MASKS_LOCK = threading.Lock()
_MASKS_KEPT = 4096
"""Laid-out texts kept (the oldest go first): the figures of one audit repeat their row names,
column headers and axis labels (85 of the 397 texts of the default pictures at 16 x 50), and
the audits of one process repeat each other's."""


def text_mask(
    font: Face, text: str, *, linespacing: float = 1.2, align: Align = "left"
) -> TextMask:
    """Lay out ``text`` (lines split at ``\\n``, each aligned within the widest) in ``font``.

    Laid out once per face, text, spacing and alignment (a face is determined by its file, size
    and resolution); the mask's array is read-only because it is shared.
    """
    if align not in _ALIGNS:
        raise ConfigError(f"text alignment must be one of {', '.join(_ALIGNS)}, got {align!r}")
    key = (font.path, font.size, font.dpi, text, linespacing, align)
    with _MASKS_LOCK:
        mask = _MASKS.get(key)
    if mask is None:
        mask = _lay_out(font, text, linespacing, align)
        with _MASKS_LOCK:
            if len(_MASKS) >= _MASKS_KEPT:
                del _MASKS[next(iter(_MASKS))]
            _MASKS[key] = mask
    return mask


def _lay_out(font: Face, text: str, linespacing: float, align: Align) -> TextMask:
    lines = text.split("\n")
    glyphs = {char: font.glyph(char) for char in set(text) - {"\n"}}
    kerning = font.kerning  # a local: read once per glyph
    widths = [_line_width(glyphs, kerning, line) for line in lines]
    width, pitch = max(widths), linespacing * (font.ascent + font.descent)
    centre = (pitch + font.ascent - font.descent) / 2  # a line's baseline, from its top
    baselines = [round(centre + pitch * i) for i in range(len(lines))]
    height = round(pitch * len(lines))
    placed = []  # (coverage, x, y) of each inked glyph, from the box's top-left corner
    for line, line_width, baseline in zip(lines, widths, baselines, strict=True):
        spare = width - line_width
        pen, previous = 0 if align == "left" else spare // 2 if align == "center" else spare, ""
        for char in line:
            shape = glyphs[char]
            pen += kerning.get((previous, char), 0)
            previous = char
            if shape.alpha.size:
                placed.append((shape.alpha, pen + shape.left, baseline - shape.top))
            pen += shape.advance
    x0 = min([0] + [x for _, x, _ in placed])
    y0 = min([0] + [y for _, _, y in placed])
    x1 = max([width] + [x + a.shape[1] for a, x, _ in placed])
    y1 = max([height] + [y + a.shape[0] for a, _, y in placed])
    alpha = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    for coverage, x, y in placed:
        target = alpha[y - y0 : y - y0 + coverage.shape[0], x - x0 : x - x0 + coverage.shape[1]]
        np.maximum(target, coverage, out=target)
    alpha.flags.writeable = False
    return TextMask(alpha, -x0, -y0, width, height, baselines[0])
