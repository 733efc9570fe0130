"""Figures of an :class:`~pytest_dreamer_audit.results.explanation.Explanation`, as PNG bytes.

Every figure is composed as one uint8 RGB array (:class:`~.canvas.Canvas`): each image column
is built in NumPy at its final pixel size (every row's block scaled by an integer factor and
framed) and copied in; text is blended from glyph bitmaps that FreeType renders once per font
face and character (:mod:`.glyphs`); the PNG is written by :func:`~.canvas.encode_png`. No
matplotlib figure, axes or pyplot is involved (matplotlib provides the fonts, the rasteriser and
the colormaps), so this is safe in pytest workers and threads. Rows of all columns line up
because every block of a figure has the same pixel pitch. The factor gallery lives in
:mod:`.gallery` and is re-exported here.

Speed (``benchmarks/bench/render.py``, ``run_all.py --only render``), the benchmark's 50-step
rollout (C = K = 20) on one core of a loaded VM: the grid took 1.6 s drawn through matplotlib's
``Figure.text``/``figimage``/``savefig`` and takes 0.14 s composed here (12x), the gallery
1.6 s and 0.07 s (24x); the first figure of a process costs ~0.15 s more (importing matplotlib,
loading fonts, rendering glyphs). matplotlib is imported inside the functions, so importing this
module costs only NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..results.explanation import Explanation
from .blocks import (
    CHANNEL_NAMES,
    FRAME_PX,
    MARGIN_PX,
    belief_rgb,
    colorbar,
    colormap,
    legend,
    observation_rgb,
    observed_channels,
    scaled,
    tiles,
)
from .canvas import DPI, Canvas, to_uint8
from .gallery import render_factor_gallery

__all__ = [
    "CHANNEL_NAMES",
    "DPI",
    "action_label",
    "observation_rgb",
    "render_factor_gallery",
    "render_rollout",
    "render_top_steps",
]

_WHITE = np.ones(3)
_HIGHLIGHT_HEX = "#d62728"
_HIGHLIGHT = np.array([0xD6, 0x27, 0x28]) / 255
_UNSAMPLED = np.full(3, 0.86)  # background of the stoch and activity blocks
_MOVES = ("up", "down")
_PROBS_CMAP, _PROBS_GAMMA = "magma", 0.5  # square root: near-uniform p ~ 1/K stays visible
_ACTIVITY_CMAP = "viridis"
_ROW_FIELDS = "step, score (1 = max)\naction, (ignored move)\nH: entropy (nats)"

_ROW_CONTENT_PX = 60  # target height of one block's content; scaled by integers only
_HEADER_PX, _TEXT_PX, _GAP_PX, _RIGHT_PX = 150, 185, 14, 16
_EPISODE_PX = 24  # render_top_steps: the band of each rollout's one-line header
_TOP_STEPS_EPISODES = 4  # render_top_steps: rollouts drawn by default


def action_label(name: str, move_ready: int | bool | None) -> str:
    """How a chosen action is written: in parentheses when the game will ignore the move.

    Args:
        name: the action's name (``games.GameSpec.action_names``).
        move_ready: Freeway's ``move_ready`` fact of the step (0: the move timer has not run
            out, so ``up``/``down`` do nothing this frame); None for games without it.
    """
    if move_ready is not None and not move_ready and name in _MOVES:
        return f"({name})"
    return name


def _check_episode(explanation: Explanation, episode: int) -> None:
    count = explanation.episodes
    if isinstance(episode, bool) or not isinstance(episode, int | np.integer):
        raise ConfigError(f"episode must be an integer from 0 to {count - 1}, got {episode!r}")
    if not 0 <= episode < count:
        raise ConfigError(
            f"episode {episode} is out of range: this explanation has {count} episodes, "
            f"so pass an index from 0 to {count - 1}"
        )


def _row_texts(explanation: Explanation, episode: int, steps: np.ndarray) -> list[str]:
    """One 3-line label per rendered step: step, score, top rank, action, entropy, events."""
    e, b = explanation, episode
    probs = e.posterior_probs[steps, b].astype(np.float64)  # [n, C, K]
    entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=(1, 2))

    def fact(name: str) -> np.ndarray:
        if name not in e.fact_names:
            return np.zeros(len(steps), dtype=np.int64) - 1
        return e.facts[steps, b, e.fact_names.index(name)]

    move_ready, sticky, executed = fact("move_ready"), fact("sticky"), fact("executed_action")
    collision, scored = fact("collision"), fact("scored")
    ranks = {int(t): i + 1 for i, t in enumerate(e.top_observations[b]) if t >= 0}
    texts = []
    for i, t in enumerate(steps):
        ready = None if move_ready[i] < 0 else int(move_ready[i])
        action = action_label(e.action_names[int(e.actions[t, b])], ready)
        if sticky[i] > 0 and executed[i] >= 0:
            action += f" [sticky: {e.action_names[int(executed[i])]}]"
        rank = f"  TOP {ranks[int(t)]}" if int(t) in ranks else ""
        events = [f"r {e.rewards[t, b]:+g}"] if e.rewards[t, b] != 0 else []
        events += ["collision"] * int(collision[i] > 0) + ["scored"] * int(scored[i] > 0)
        texts.append(
            f"t {int(t):<3} {e.observation_scores[t, b]:.2f}{rank}\n{action}\n"
            f"H {entropy[i]:.1f}  {' '.join(events)}"
        )
    return texts


@dataclass(frozen=True)
class _Column:
    """One image column of a rollout figure.

    Shape:
        - blocks: ``[n, h, w, 3]`` float RGB, one block per drawn step, before scaling
    """

    blocks: np.ndarray
    title: str
    cmap: str | None


def _columns(explanation: Explanation, episode: int, steps: np.ndarray) -> list[_Column]:
    """The observation, [decoded belief,] posterior, sampled classes and activity of ``steps``."""
    e, b = explanation, episode
    n = len(steps)
    categoricals, classes = e.posterior_probs.shape[2:]
    sampled = np.zeros((n, categoricals, classes), dtype=bool)
    np.put_along_axis(sampled, e.stoch_classes[steps, b].astype(np.int64)[..., None], True, 2)
    activity = colormap(_ACTIVITY_CMAP, e.step_scores[steps, b])[:, :, None, :]
    probs = colormap(_PROBS_CMAP, e.posterior_probs[steps, b], _PROBS_GAMMA)
    columns = [
        _Column(
            observation_rgb(e.observations[steps, b], observed_channels(e)), "observation", None
        ),
        _Column(probs, "posterior P\n[C x K]", _PROBS_CMAP),
        _Column(np.where(sampled[..., None], 0.0, _UNSAMPLED), "sampled\nclasses", None),
        _Column(
            np.where(sampled[..., None], activity, _UNSAMPLED),
            "activity on\nsampled",
            _ACTIVITY_CMAP,
        ),
    ]
    if e.beliefs.shape[0]:  # the decoder's reconstruction: what the model believes it sees
        beliefs = belief_rgb(e.beliefs[steps, b], observed_channels(e))
        columns.insert(1, _Column(beliefs, "decoded\nbelief", None))
    return columns


def _content_px(columns: list[_Column], categoricals: int) -> int:
    """Rows of every block's content: a multiple of each column's block height when they have
    a small common multiple, else of ``max(C, 10)``, near :data:`_ROW_CONTENT_PX`."""
    common = int(np.lcm.reduce([column.blocks.shape[1] for column in columns]))
    common = common if common <= _ROW_CONTENT_PX else max(categoricals, 10)
    return common * max(1, round(_ROW_CONTENT_PX / common))


@dataclass(frozen=True)
class _Geometry:
    """Pixel sizes shared by every row of a rollout figure.

    Attributes:
        content: rows of every block's content. widths: each column's tile width.
        pitch: rows per drawn step. width: the whole figure's width.
    """

    content: int
    widths: list[int]
    pitch: int
    width: int


def _geometry(columns: list[_Column], categoricals: int) -> _Geometry:
    """The geometry of a figure of ``columns``: blocks scaled to :func:`_content_px` rows and
    framed (each column's width from its first block)."""
    content = _content_px(columns, categoricals)
    widths = [tiles(scaled(c.blocks[:1], content), _WHITE[None]).shape[2] for c in columns]
    pitch = content + 2 * (MARGIN_PX + FRAME_PX)
    width = _TEXT_PX + sum(w + _GAP_PX for w in widths) + _RIGHT_PX
    return _Geometry(content, widths, pitch, width)


def _header(
    canvas: Canvas, e: Explanation, title: str, columns: list[_Column], widths: list[int]
) -> None:
    """Title, channel legend, column titles, colour bars and the row fields' key."""
    canvas.text(15, 10, title, 1.5, va="top", linespacing=1.4)
    legend(canvas, e, 56)
    x = _TEXT_PX + _GAP_PX
    for column, columns_px in zip(columns, widths, strict=True):
        canvas.text(
            x + columns_px / 2,
            _HEADER_PX - 4,
            column.title,
            ha="center",
            va="bottom",
            linespacing=1.3,
        )
        if column.cmap is not None:
            gamma = _PROBS_GAMMA if column.cmap == _PROBS_CMAP else 1.0
            colorbar(canvas, column.cmap, gamma, x + 6, 92, columns_px - 12)
        x += columns_px + _GAP_PX
    canvas.text(12, _HEADER_PX - 4, _ROW_FIELDS, family="monospace", va="bottom", linespacing=1.3)


def _rows(
    canvas: Canvas,
    e: Explanation,
    b: int,
    steps: np.ndarray,
    columns: list[_Column],
    content: int,
    y: int,
    highlighted: np.ndarray,
) -> None:
    """Draw one row per step from ``y`` down (``highlighted`` rows framed and written in red)."""
    frames = np.where(highlighted[:, None], _HIGHLIGHT, _WHITE)
    x, pitch = _TEXT_PX + _GAP_PX, 0
    for column in columns:
        image = tiles(scaled(to_uint8(column.blocks), content), frames)
        pitch, columns_px = image.shape[1:3]
        canvas.image(image.reshape(-1, columns_px, 3), x, y)
        x += columns_px + _GAP_PX
    for i, text in enumerate(_row_texts(e, b, steps)):
        canvas.text(
            12,
            y + pitch * (i + 0.5),
            text,
            family="monospace",
            va="center",
            linespacing=1.3,
            color=_HIGHLIGHT_HEX if highlighted[i] else "#000000",
            fontweight="bold" if highlighted[i] else "normal",
        )


def _describe(e: Explanation) -> str:
    return f"{e.game} ({'POMDP' if e.pomdp else 'MDP'})"


def render_rollout(
    explanation: Explanation, episode: int, *, path: str | os.PathLike[str] | None = None
) -> bytes:
    """One rollout as a grid: one row per valid step, four image columns.

    Columns: the observation; the posterior probabilities ``[C, K]`` (magma, square-root
    scale); the sampled class of each categorical (black); the step's normalised activity
    ``step_scores[t, b, c]`` painted onto the sampled class of categorical ``c`` (viridis).
    The text left of each row gives the step, its observation score, its rank when it is one of
    the rollout's top-k observations (those rows are also framed in red), the chosen action (in
    parentheses when the game ignores it, with the executed action when a sticky action
    replaced it), the summed entropy of the posterior (nats) and events (reward, collision).

    Args:
        explanation: what to draw. episode: index into its episodes (``0 .. B - 1``).
        path: also write the PNG there (parent folders are created).

    Returns:
        The PNG file's bytes: ``150 + rows x pitch`` pixels high at :data:`DPI`, where the
        pitch (about 72 pixels) depends only on ``C`` and rows are the episode's valid steps.

    Raises:
        ConfigError: ``episode`` is not a valid index (the message gives the range).
    """
    _check_episode(explanation, episode)
    e, b = explanation, int(episode)
    steps = np.flatnonzero(e.valid[:, b])
    n = len(steps)
    top = e.top_observations[b]
    columns = _columns(e, b, steps)
    g = _geometry(columns, e.posterior_probs.shape[2])
    canvas = Canvas(g.width, _HEADER_PX + g.pitch * max(n, 1))
    title = (
        f"{_describe(e)}, episode {b} (seed {e.seeds[b]}): "
        f"return {float(e.returns[b]):g}, {n} steps\nscore {e.config.score}, "
        f"layout {e.config.layout}, rank {e.rank}; top {len(top[top >= 0])} steps framed red"
    )
    _header(canvas, e, title, columns, g.widths)
    if n:
        highlighted = np.isin(steps, top[top >= 0])
        _rows(canvas, e, b, steps, columns, g.content, _HEADER_PX, highlighted)
    else:
        canvas.text(g.width / 2, _HEADER_PX + g.pitch / 2, "no valid steps", ha="center")
    return canvas.png(path)


def render_top_steps(
    explanation: Explanation,
    episodes: Sequence[int] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> bytes:
    """A compact figure for HTML reports: each rollout's top-k observation rows only.

    The columns, column titles, colour bars and row texts are those of :func:`render_rollout`;
    each rollout gets a one-line header (episode, seed, return, valid steps) and then its
    ``top_observations[b]`` in rank order (entries of -1, fewer valid steps than k, are
    skipped). The rows are not framed red: all of them are top rows, and the text names the rank.

    Args:
        explanation: what to draw.
        episodes: indices of the rollouts to draw, in this order (default: the first 4, or all
            when there are fewer).
        path: also write the PNG there (parent folders are created).

    Returns:
        The PNG file's bytes: as wide as a rollout grid (about 600 pixels, 700 with the decoded
        belief column, so it stays readable shown 800 pixels wide) and
        ``150 + sum over rollouts of (24 + rows x pitch)`` pixels high, the pitch (about 72
        pixels) as in the grid: 4 rollouts with k = 3 are about 1110 pixels high.

    Raises:
        ConfigError: an entry of ``episodes`` is not a valid index (the message gives the range).
    """
    e = explanation
    chosen = (
        list(range(min(_TOP_STEPS_EPISODES, e.episodes))) if episodes is None else list(episodes)
    )
    for episode in chosen:
        _check_episode(e, episode)
    ranked = [(int(b), e.top_observations[b][e.top_observations[b] >= 0]) for b in chosen]
    columns = _columns(e, 0, np.zeros(1, dtype=np.int64))  # the geometry of any one step
    g = _geometry(columns, e.posterior_probs.shape[2])
    height = _HEADER_PX + sum(_EPISODE_PX + g.pitch * len(steps) for _, steps in ranked)
    canvas = Canvas(g.width, max(height, _HEADER_PX + _EPISODE_PX))
    k = e.top_observations.shape[1]
    title = (
        f"{_describe(e)}: the top {k} steps of {len(chosen)} of {e.episodes} rollouts, by rank\n"
        f"score {e.config.score}, layout {e.config.layout}, rank {e.rank}"
    )
    _header(canvas, e, title, columns, g.widths)
    y = _HEADER_PX
    for b, steps in ranked:
        valid = int(e.valid[:, b].sum())
        line = f"episode {b} (seed {e.seeds[b]}): return {float(e.returns[b]):g}, {valid} steps"
        canvas.fill(0, y + 2, g.width, 1, "#bbbbbb")
        canvas.text(12, y + _EPISODE_PX / 2 + 1, line, 0.5, va="center", fontweight="bold")
        y += _EPISODE_PX
        if len(steps):
            no_frames = np.zeros(len(steps), dtype=bool)
            _rows(canvas, e, b, steps, _columns(e, b, steps), g.content, y, no_frames)
        y += g.pitch * len(steps)
    return canvas.png(path)
