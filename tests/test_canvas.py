from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.report.canvas import DPI, Box, Canvas, encode_png, rgb8


def ink(canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns holding any non-white pixel."""
    dark = (canvas.pixels < 255).any(axis=2)
    return np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))


def test_png_round_trips_exactly_and_records_the_resolution() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    image = Image.open(io.BytesIO(encode_png(pixels)))
    assert image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), pixels)
    assert image.info["dpi"] == pytest.approx((DPI, DPI), abs=0.01)


def test_images_are_rounded_to_bytes_and_clipped_at_the_edges() -> None:
    canvas = Canvas(10, 8)
    canvas.image(np.full((4, 4, 3), 0.5), 8, 6)  # hangs off the bottom-right corner
    assert (canvas.pixels[6:, 8:] == 128).all()
    assert (canvas.pixels[:6] == 255).all()
    assert (canvas.pixels[:, :8] == 255).all()
    canvas.image(np.zeros((2, 2, 3)), -5, -5)  # entirely outside: nothing happens


@pytest.mark.parametrize(
    ("ha", "va"), [("left", "top"), ("center", "center"), ("right", "bottom"), ("left", "baseline")]
)
def test_text_sits_at_its_anchor(ha: str, va: str) -> None:
    canvas = Canvas(200, 100)
    canvas.text(100, 50, "Hello\nworld", ha=ha, va=va)  # type: ignore[arg-type]
    rows, columns = ink(canvas)
    assert len(rows) > 10
    assert len(columns) > 20
    if ha == "left":
        assert 99 <= columns.min() <= 102
    elif ha == "right":
        assert 97 <= columns.max() <= 100
    else:
        assert abs((columns.min() + columns.max()) / 2 - 100) <= 2
    if va == "top":
        assert 50 <= rows.min() <= 54
    elif va == "bottom":
        assert 45 <= rows.max() <= 50  # above the box's bottom: the last line's descent
    elif va == "center":
        assert abs((rows.min() + rows.max()) / 2 - 50) <= 3
    else:
        assert 42 <= rows.min() < 50 < rows.max()  # the first line stands on y = 50


def test_text_colour_weight_and_box() -> None:
    canvas = Canvas(120, 40)
    canvas.text(10, 20, "IIII", 2.0, va="center", color="#d62728", fontweight="bold")
    reds = canvas.pixels[(canvas.pixels < 255).any(axis=2)]
    assert (reds == rgb8("#d62728")).all(axis=1).sum() > 20  # fully covered pixels: pure ink
    assert (reds[:, 0] >= reds[:, 1]).all()  # blends of red and white only
    boxed = Canvas(120, 40)
    boxed.text(10, 10, "\u25a0 x", va="top", color="#ffe119", bbox=Box("#000000", 1.5))
    assert (boxed.pixels[9, 9] == 0).all()  # the box reaches 2 px (1.5 pt) around the text
    assert (boxed.pixels == rgb8("#ffe119")).all(axis=2).any()


def test_unknown_vertical_alignment_is_rejected() -> None:
    with pytest.raises(ConfigError, match="top, center, bottom, baseline"):
        Canvas(10, 10).text(0, 0, "x", va="middle")  # type: ignore[arg-type]
