from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.report.render import (
    action_label,
    observation_rgb,
    render_factor_gallery,
    render_rollout,
)
from pytest_dreamer_audit.testing import fake_explanation


def decode(png: bytes) -> np.ndarray:
    return imread(io.BytesIO(png), format="png")


@pytest.mark.parametrize(
    ("name", "move_ready", "expected"),
    [
        ("up", 0, "(up)"),
        ("down", 0, "(down)"),
        ("up", 1, "up"),
        ("noop", 0, "noop"),
        ("left", None, "left"),
        ("up", None, "up"),
        ("down", True, "down"),
    ],
)
def test_action_label_parenthesises_ignored_moves(
    name: str, move_ready: int | None, expected: str
) -> None:
    assert action_label(name, move_ready) == expected


def test_observation_rgb_colours_channels_and_keeps_the_player_on_top() -> None:
    obs = np.zeros((1, 2, 10, 10), dtype=bool)
    obs[0, 0, 0, 0] = obs[0, 1, 0, 0] = True  # overlap: channel 0 wins
    obs[0, 1, 5, 5] = True
    rgb = observation_rgb(obs, (0, 1))
    assert rgb.shape == (1, 10, 10, 3)
    assert rgb[0, 9, 9].tolist() == [0.0, 0.0, 0.0]
    assert not np.allclose(rgb[0, 0, 0], rgb[0, 5, 5])
    np.testing.assert_allclose(rgb[0, 0, 0], observation_rgb(obs[:, :1], (0,))[0, 0, 0])


def test_rollout_png_decodes_with_the_expected_size() -> None:
    image = decode(render_rollout(fake_explanation(steps=12), 1))
    assert image.ndim == 3
    assert image.shape[2] in (3, 4)
    # A header of at most ~2 inches, then one row of 60-90 pixels per step, at 100 dpi.
    assert 150 + 12 * 60 <= image.shape[0] <= 200 + 12 * 90
    assert 300 <= image.shape[1] <= 1000


def test_rollout_height_grows_by_one_row_per_valid_step() -> None:
    explanation = fake_explanation(steps=20, lengths=[5, 20, 12])
    h5, h20, h12 = (decode(render_rollout(explanation, b)).shape[0] for b in range(3))
    pitch = (h20 - h5) / 15
    assert 60 <= pitch <= 90
    assert h12 - h5 == 7 * pitch
    assert h5 - 5 * pitch == h20 - 20 * pitch  # the same header


def test_terminated_episode_renders_only_its_valid_rows() -> None:
    # The padding after a 4-step episode must not be drawn, whatever the arrays hold there.
    explanation = fake_explanation(steps=30, lengths=[4, 30, 30])
    short, full = (decode(render_rollout(explanation, b)).shape[0] for b in (0, 1))
    pitch = (full - short) / 26
    assert short - 4 * pitch == full - 30 * pitch
    assert 60 <= pitch <= 90


def test_rollout_is_written_to_path(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "rollout-0.png"
    png = render_rollout(fake_explanation(), 0, path=target)
    assert target.read_bytes() == png
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize("episode", [-1, 3, 10])
def test_invalid_episode_lists_the_valid_range(episode: int) -> None:
    with pytest.raises(ConfigError, match=r"0 to 2"):
        render_rollout(fake_explanation(episodes=3), episode)


def test_non_integer_episode_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"integer"):
        render_rollout(fake_explanation(), "0")  # type: ignore[arg-type]


@pytest.mark.parametrize("layout", ["pooled", "per_step"])
def test_factor_gallery_has_one_row_per_factor(layout: str) -> None:
    heights = [
        decode(render_factor_gallery(fake_explanation(rank=rank, layout=layout))).shape[0]
        for rank in (2, 3, 5)
    ]
    pitch = heights[1] - heights[0]
    assert pitch >= 72  # a row holds 10 x 10 observations scaled 6x, plus labels
    assert heights[2] - heights[0] == 3 * pitch


def test_gallery_skips_missing_examples() -> None:
    explanation = fake_explanation(rank=2, top_k=3)
    explanation.factor_examples[1, 2] = -1
    assert decode(render_factor_gallery(explanation)).shape[0] > 0


@pytest.mark.parametrize("game", ["breakout", "seaquest", "space_invaders", "asterix"])
def test_every_game_renders(game: str) -> None:
    explanation = fake_explanation(game=game, pomdp=False, steps=4, episodes=2)
    assert decode(render_rollout(explanation, 1)).shape[0] > 0
    assert decode(render_factor_gallery(explanation)).shape[0] > 0


def test_importing_render_does_not_import_matplotlib() -> None:
    code = (
        "import sys, pytest_dreamer_audit.report.render; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_render_leaves_pyplot_unimported() -> None:
    code = (
        "import sys; from pytest_dreamer_audit.testing import fake_explanation; "
        "from pytest_dreamer_audit.report.render import render_rollout, render_factor_gallery; "
        "e = fake_explanation(); render_rollout(e, 0); render_factor_gallery(e); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
