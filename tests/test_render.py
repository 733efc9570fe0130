from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread
from PIL import Image

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.report.blocks import legend, observed_channels
from pytest_dreamer_audit.report.render import (
    action_label,
    observation_rgb,
    render_factor_gallery,
    render_rollout,
    render_top_steps,
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


@pytest.mark.parametrize(
    ("game", "pomdp", "names"),
    [
        ("breakout", True, ("paddle", "ball", "brick")),
        ("breakout", False, ("paddle", "ball", "trail", "brick")),
        ("space_invaders", True, ("cannon", "alien", "friendly_bullet", "enemy_bullet")),
        ("freeway", True, ("chicken", "car")),
    ],
)
def test_the_legend_names_the_observed_channels_of_the_game(
    game: str, pomdp: bool, names: tuple[str, ...]
) -> None:
    explanation = fake_explanation(game=game, pomdp=pomdp, steps=2, episodes=1)
    assert explanation.observation_channels == names
    assert len(names) == explanation.observations.shape[2]
    labels: list[str] = []

    class Recorder:  # the part of Canvas the legend draws on
        width = 10_000

        def text(self, x: float, y: float, label: str, **style: object) -> None:
            labels.append(label)

    legend(Recorder(), explanation, 0)  # type: ignore[arg-type]
    assert labels == [f"\u25a0 {name}" for name in names]


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


# Geometry of the default fake explanation (C = 4, K = 5, 10 x 10 observations): blocks of 60
# content rows (observation x6, the [C, K] blocks x15), framed by a 3 px margin and a 3 px frame.
_HEADER, _PITCH, _INSET = 150, 72, 6
_COLUMN_X = {"observation": 199, "posterior": 285, "sampled": 386, "activity": 487}
_RED, _GREY = [0xD6, 0x27, 0x28], 219


def pixels(png: bytes) -> np.ndarray:
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.dtype == np.uint8
    return image


def expected_block(rgb: np.ndarray, factor: int) -> np.ndarray:
    """``[h, w, 3]`` floats in [0, 1] as the figure must hold them: bytes, each pixel repeated."""
    block = np.round(rgb * 255).astype(np.uint8)
    return np.repeat(np.repeat(block, factor, axis=0), factor, axis=1)


def cell(image: np.ndarray, column: str, row: int, height: int, width: int) -> np.ndarray:
    y, x = _HEADER + _PITCH * row + _INSET, _COLUMN_X[column] + _INSET
    return image[y : y + height, x : x + width]


def test_rollout_cells_hold_the_exact_arrays() -> None:
    e, b = fake_explanation(), 0
    image = pixels(render_rollout(e, b))
    assert image.shape == (_HEADER + 12 * _PITCH, 590, 3)
    top = set(e.top_observations[b][e.top_observations[b] >= 0].tolist())
    channels = observed_channels(e)
    for t in (0, 5, *sorted(top)):
        obs = observation_rgb(e.observations[t : t + 1, b], channels)[0]
        np.testing.assert_array_equal(cell(image, "observation", t, 60, 60), expected_block(obs, 6))
        probs = matplotlib.colormaps["magma"](np.sqrt(e.posterior_probs[t, b]))[..., :3]
        np.testing.assert_array_equal(
            cell(image, "posterior", t, 60, 75), expected_block(probs, 15)
        )
        one_hot = np.zeros((4, 5), dtype=bool)
        one_hot[np.arange(4), e.stoch_classes[t, b]] = True
        sampled = np.where(one_hot[..., None], 0.0, np.full(3, _GREY / 255))
        np.testing.assert_array_equal(
            cell(image, "sampled", t, 60, 75), expected_block(sampled, 15)
        )
        activity = matplotlib.colormaps["viridis"](e.step_scores[t, b])[:, None, :3]
        painted = np.where(one_hot[..., None], activity, np.full(3, _GREY / 255))
        np.testing.assert_array_equal(
            cell(image, "activity", t, 60, 75), expected_block(painted, 15)
        )
        # The frame ring (3 px outside the content) is red exactly on the top-k rows.
        y, x = _HEADER + _PITCH * t + 3, _COLUMN_X["observation"] + 3
        ring = image[y : y + 3, x : x + 66].reshape(-1, 3)
        assert (ring == (_RED if t in top else [255, 255, 255])).all()


def test_rollout_text_is_where_text_belongs() -> None:
    e, b = fake_explanation(), 0
    image = pixels(render_rollout(e, b)).astype(int)
    ink = (image < 200).any(axis=2)  # a text pixel darker than the anti-aliasing's fringe
    red = (image[..., 0] > 150) & (image[..., 1] < 110) & (image[..., 2] < 110)
    top = set(e.top_observations[b][e.top_observations[b] >= 0].tolist())
    assert ink[5:50, 10:400].sum() > 300  # the two-line title
    for x in _COLUMN_X.values():  # each column's two-line title above its blocks
        assert ink[118:147, x : x + 70].sum() > 40
    assert ink[100:147, 10:180].sum() > 300  # the key of the row fields
    for t in range(12):
        band = slice(_HEADER + _PITCH * t + 10, _HEADER + _PITCH * (t + 1) - 10)
        assert ink[band, 10:180].sum() > 100, f"row {t} has no text"
        assert (red[band, 10:180].sum() > 50) == (t in top), f"row {t}: red text iff a top row"
        # Nothing spills into the white gaps between the image columns.
        assert (image[band, 185:199] == 255).all()
    # The colour bars: the ramp's ends are the colormaps' ends.
    bar = image[95, _COLUMN_X["posterior"] + 6 : _COLUMN_X["posterior"] + 87 - 6]
    magma = np.round(np.asarray(matplotlib.colormaps["magma"]([0.0, 1.0]))[:, :3] * 255)
    np.testing.assert_array_equal(bar[[0, -1]], magma)


def test_top_steps_figure_shows_each_rollouts_top_rows_in_rank_order() -> None:
    e = fake_explanation(episodes=3)
    image = pixels(render_top_steps(e, [2, 0]))
    assert image.shape == (_HEADER + 2 * (24 + 3 * _PITCH), 590, 3)
    channels = observed_channels(e)
    for slot, (b, y0) in enumerate(((2, _HEADER + 24), (0, _HEADER + 2 * 24 + 3 * _PITCH))):
        for rank, t in enumerate(e.top_observations[b]):
            obs = observation_rgb(e.observations[t : t + 1, b], channels)[0]
            y, x = y0 + _PITCH * rank + _INSET, _COLUMN_X["observation"] + _INSET
            got = image[y : y + 60, x : x + 60]
            np.testing.assert_array_equal(got, expected_block(obs, 6), f"rollout {slot}")
        header = image[y0 - 24 : y0].astype(int)
        assert (header[:, 10:300] < 100).all(axis=2).sum() > 100  # the rollout's one-line header


def test_top_steps_height_grows_with_k_and_the_rollouts() -> None:
    def height(**kwargs: object) -> int:
        episodes = kwargs.pop("episodes_drawn", None)
        png = render_top_steps(fake_explanation(episodes=5, **kwargs), episodes)  # type: ignore[arg-type]
        return decode(png).shape[0]

    k2, k3, four = height(top_k=2), height(top_k=3), height(top_k=3, episodes_drawn=[0, 1, 2, 3])
    assert k3 - k2 == 4 * _PITCH  # the default: the first 4 rollouts, one more row each
    assert four == k3
    assert height(top_k=3, episodes_drawn=[1]) == _HEADER + 24 + 3 * _PITCH
    assert height(top_k=3, episodes_drawn=[4, 3, 1, 0, 2]) - k3 == 24 + 3 * _PITCH


def test_top_steps_skips_missing_top_entries() -> None:
    # Only 2 valid steps in rollout 0, so its third top entry is -1.
    e = fake_explanation(steps=8, lengths=[2, 8, 8], top_k=3)
    assert (e.top_observations[0] == -1).sum() == 1
    assert decode(render_top_steps(e, [0])).shape[0] == _HEADER + 24 + 2 * _PITCH


@pytest.mark.parametrize("episodes", [[-1], [0, 3], ["0"]])
def test_top_steps_rejects_invalid_episodes(episodes: list[object]) -> None:
    with pytest.raises(ConfigError, match=r"0 to 2"):
        render_top_steps(fake_explanation(episodes=3), episodes)  # type: ignore[arg-type]


def test_top_steps_is_written_to_path(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "top.png"
    png = render_top_steps(fake_explanation(), path=target)
    assert target.read_bytes() == png


def test_rollout_without_valid_steps_says_so() -> None:
    e = fake_explanation(steps=6, lengths=[0, 6, 6])
    image = pixels(render_rollout(e, 0))
    assert image.shape[0] == _HEADER + _PITCH
    assert (image[_HEADER:, 200:400] < 100).all(axis=2).sum() > 50  # "no valid steps"
