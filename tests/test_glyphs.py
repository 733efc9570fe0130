from __future__ import annotations

import numpy as np
import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.report import glyphs as glyphs_module
from pytest_dreamer_audit.report.glyphs import face, glyph, text_mask


def ink_columns(alpha: np.ndarray) -> np.ndarray:
    return np.flatnonzero(alpha.any(axis=0))


def test_monospace_advances_are_equal_and_whole_pixels() -> None:
    mono = face("monospace", 7.5)
    advances = {mono.glyph(char).advance for char in "iWm0 .:"}
    assert advances == {6}  # DejaVu Sans Mono: 0.6 em at 7.5 pt and 100 dpi, hinted
    assert text_mask(mono, "iiii").width == text_mask(mono, "WWWW").width == 24


def test_glyphs_are_cached_and_spaces_have_no_ink() -> None:
    sans = face("sans-serif", 7.5)
    assert sans.glyph("g") is sans.glyph("g")
    space = sans.glyph(" ")
    assert space.alpha.shape == (0, 0)
    assert space.advance > 0
    g = sans.glyph("g")
    assert g.alpha.max() == 255
    assert g.top < g.alpha.shape[0]
    assert glyph(sans.path, 7.5, 100, "\u00e9").alpha.any()  # beyond ASCII: rendered on use


def test_texts_are_laid_out_once_per_face_and_shared_read_only() -> None:
    sans, bold = face("sans-serif", 7.5), face("sans-serif", 7.5, "bold")
    first = text_mask(sans, "t 12, ep 3\nact 0.91")
    assert text_mask(sans, "t 12, ep 3\nact 0.91") is first
    assert text_mask(sans, "t 12, ep 3\nact 0.91", align="right") is not first
    assert text_mask(bold, "t 12, ep 3\nact 0.91") is not first
    assert not first.alpha.flags.writeable  # shared: a caller cannot paint into it
    with pytest.raises(ValueError, match="read-only"):
        first.alpha[0, 0] = 1
    # The kept mask is the layout itself: the same pixels as laying the text out afresh.
    fresh = glyphs_module._lay_out(sans, "t 12, ep 3\nact 0.91", 1.2, "left")
    np.testing.assert_array_equal(first.alpha, fresh.alpha)
    assert (first.left, first.top, first.width, first.height, first.baseline) == (
        fresh.left,
        fresh.top,
        fresh.width,
        fresh.height,
        fresh.baseline,
    )


def test_lines_stack_at_the_font_pitch_and_centre() -> None:
    sans = face("sans-serif", 7.5)
    one, two = text_mask(sans, "Hx"), text_mask(sans, "Hx\nH")
    pitch = 1.2 * (sans.ascent + sans.descent)
    assert one.height == round(pitch)
    assert two.height == round(2 * pitch)
    assert one.width == two.width  # the box is the widest line
    centred = text_mask(sans, "HHHHHH\nH", align="center")
    rows = centred.alpha[centred.top + one.height :]  # the second line
    columns = ink_columns(rows) - centred.left
    assert abs((columns.min() + columns.max()) / 2 - centred.width / 2) <= 1.5
    right = text_mask(sans, "HHHHHH\nH", align="right")
    columns = ink_columns(right.alpha[right.top + one.height :]) - right.left
    assert right.width - 2 <= columns.max() <= right.width


def test_kerning_pulls_pairs_together_as_matplotlib_does() -> None:
    sans = face("sans-serif", 9.0)
    assert sans.kerning[("T", "o")] < 0
    assert text_mask(sans, "To").width < sans.glyph("T").advance + sans.glyph("o").advance
    assert face("monospace", 9.0).kerning == {}


def test_unknown_alignment_is_rejected() -> None:
    with pytest.raises(ConfigError, match="left, center, right"):
        text_mask(face("sans-serif", 7.5), "x", align="middle")  # type: ignore[arg-type]
