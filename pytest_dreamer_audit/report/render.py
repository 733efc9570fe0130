"""Figures of an :class:`~pytest_dreamer_audit.results.explanation.Explanation`, as PNG bytes.

Built with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global
state, safe in pytest workers and threads. matplotlib is imported inside the functions, so
importing this module costs only NumPy.

Speed: the source notebook drew 4 axes per step (200 axes for a 50-step rollout, seconds per
figure). Here each column of a figure is composed in NumPy as one RGB image at the final pixel
size (every row's block scaled by an integer factor and framed) and placed with one
``Figure.figimage``: no axes, no resampling. Each row's numbers are one text. Rows of all
columns line up because every block of a figure has the same pixel pitch.
``benchmarks/bench/render.py`` (``run_all.py --only render``) measures both approaches.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..games import GAMES
from ..results.config import ClaimConfig
from ..results.explanation import Explanation
from ..results.semantics import ClaimsTable, FactAssociation, claims_table, factor_highlights
from ..results.values import FactorStatus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CHANNEL_NAMES",
    "DPI",
    "action_label",
    "observation_rgb",
    "render_factor_gallery",
    "render_rollout",
]

CHANNEL_NAMES: dict[str, tuple[str, ...]] = {
    game: tuple(names.split())
    for game, names in {
        "asterix": "player enemy trail gold",
        "breakout": "paddle ball trail brick",
        "freeway": "chicken car speed1 speed2 speed3 speed4 speed5",
        "seaquest": "sub_front sub_back friendly_bullet trail enemy_bullet enemy_fish enemy_sub "
        "oxygen_gauge diver_gauge diver",
        "space_invaders": "cannon alien alien_left alien_right friendly_bullet enemy_bullet",
    }.items()
}
"""MinAtar's channel names of each game (full MDP channel order, as in ``Env.channels``)."""

# One colour per MinAtar channel index, distinct on the black background (Trubetskoy's palette).
_CHANNEL_PALETTE = "ffe119 e6194b 3cb44b 42d4f4 f58231 f032e6 bfef45 fabed4 4363d8 dcbeff"
_CHANNEL_HEX = tuple(f"#{colour}" for colour in _CHANNEL_PALETTE.split())
_CHANNEL_RGB = np.array([[int(h[i : i + 2], 16) / 255 for i in (1, 3, 5)] for h in _CHANNEL_HEX])
_WHITE = np.ones(3)
_HIGHLIGHT_HEX = "#d62728"
_HIGHLIGHT = np.array([0xD6, 0x27, 0x28]) / 255
_BAR = np.array([0x43, 0x63, 0xD8]) / 255
_UNSAMPLED = np.full(3, 0.86)  # background of the stoch and activity blocks
_MOVES = ("up", "down")
_PROBS_CMAP, _PROBS_GAMMA = "magma", 0.5  # square root: near-uniform p ~ 1/K stays visible
_ACTIVITY_CMAP = "viridis"
_FONT = 7.5
_ROW_FIELDS = "step, score (1 = max)\naction, (ignored move)\nH: entropy (nats)"
_TOP: dict[str, Any] = {"ha": "center", "va": "top", "linespacing": 1.2}
_BOTTOM: dict[str, Any] = {"ha": "center", "va": "bottom", "linespacing": 1.3}
_ROW: dict[str, Any] = {"va": "center", "linespacing": 1.3}
_TOP_ROW: dict[str, Any] = {"color": _HIGHLIGHT_HEX, "fontweight": "bold"}
_DARK_BOX: dict[str, Any] = {"facecolor": "black", "edgecolor": "none", "pad": 1.5}

DPI = 100
"""Figures are laid out in pixels at this resolution (1 inch = ``DPI`` pixels)."""
_ROW_CONTENT_PX = 60  # target height of one block's content; scaled by integers only
_MARGIN_PX, _FRAME_PX = 3, 3  # white margin, then a frame (red on highlighted rows)
_HEADER_PX, _TEXT_PX, _GAP_PX, _RIGHT_PX = 150, 185, 14, 16
_LABEL_BAND_PX = 32  # gallery: room for the labels under each example


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


def _scaled(blocks: np.ndarray, height: int) -> np.ndarray:
    """Nearest-neighbour resize of ``[N, h, w, 3]`` blocks to ``height`` rows, same aspect."""
    h, w = blocks.shape[1:3]
    width = max(1, round(w * height / h))
    return blocks[:, np.arange(height) * h // height][:, :, np.arange(width) * w // width]


def _tiles(blocks: np.ndarray, frames: np.ndarray, band: int = 0) -> np.ndarray:
    """Frame each block (colour ``frames[i]``) inside a white margin, ``band`` white rows under.

    Shape:
        - blocks: ``[N, h, w, 3]``; frames: ``[N, 3]``
        - output: ``[N, h + 2 p + band, w + 2 p, 3]`` with ``p = margin + frame``
    """
    n, h, w, _ = blocks.shape
    m, p = _MARGIN_PX, _MARGIN_PX + _FRAME_PX
    out = np.ones((n, h + 2 * p + band, w + 2 * p, 3))
    out[:, m : h + 2 * p - m, m : w + 2 * p - m] = frames[:, None, None, :]
    out[:, p : p + h, p : p + w] = blocks
    return out


def _colormap(name: str, values: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``[...]`` values in [0, 1] -> ``[..., 3]`` RGB of matplotlib colormap ``name``."""
    import matplotlib

    return np.asarray(matplotlib.colormaps[name](np.clip(values, 0.0, 1.0) ** gamma))[..., :3]


def _observed_channels(explanation: Explanation) -> tuple[int, ...]:
    spec = GAMES.get(explanation.game)
    count = explanation.observations.shape[2]
    observed = spec.observed_channels(explanation.pomdp) if spec else ()
    return tuple(observed) if len(observed) == count else tuple(range(count))


class _Canvas:
    """A figure addressed in pixels from its top-left corner."""

    def __init__(self, width: int, height: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.width, self.height = width, height
        self.figure: Figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        FigureCanvasAgg(self.figure)

    def image(self, rgb: np.ndarray, x: int, y: int) -> None:
        """Place ``[h, w, 3]`` pixels in [0, 1] with their top-left corner at (x, y)."""
        pixels = np.round(rgb * 255).astype(np.uint8)  # saves matplotlib's float conversion
        self.figure.figimage(pixels, xo=x, yo=self.height - y - rgb.shape[0], origin="upper")

    def text(self, x: float, y: float, text: str, size: float = 0.0, **style: Any) -> None:
        """Text anchored at pixel (x, y), ``size`` points larger than the base font."""
        self.figure.text(x / self.width, 1 - y / self.height, text, fontsize=_FONT + size, **style)

    def colorbar(self, cmap: str, gamma: float, x: int, y: int, width: int) -> None:
        """A horizontal colour scale from 0 to 1 with its tick labels under it."""
        ramp = _colormap(cmap, np.linspace(0.0, 1.0, width) ** (1 / gamma), gamma)
        self.image(np.broadcast_to(ramp, (8, width, 3)), x, y)
        for value in (0.0, 0.25, 1.0) if gamma < 1 else (0.0, 0.5, 1.0):
            self.text(x + value**gamma * (width - 1), y + 10, f"{value:g}", -1.5, **_TOP)

    def png(self, path: str | os.PathLike[str] | None) -> bytes:
        buffer = io.BytesIO()
        # zlib level 1 instead of 6: ~10 ms less per 50-step rollout, files ~20% larger.
        options = {"compress_level": 1}
        self.figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs=options)
        data = buffer.getvalue()
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
        return data


def _legend(canvas: _Canvas, explanation: Explanation, y: int) -> None:
    """The colour of each observed channel, wrapped onto a second line when needed."""
    names = CHANNEL_NAMES.get(explanation.game, ())
    x = 15
    for channel in _observed_channels(explanation):
        name = names[channel] if channel < len(names) else f"ch{channel}"
        width = 14 + 6 * (len(name) + 2)  # about 6 pixels per character
        if x + width > canvas.width:
            x, y = 15, y + 17
        colour = _CHANNEL_HEX[channel % len(_CHANNEL_HEX)]
        canvas.text(x, y, f"\u25a0 {name}", color=colour, va="top", bbox=_DARK_BOX)
        x += width


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
        # Few glyphs: drawing text costs per glyph; the column header names the fields.
        texts.append(
            f"t {int(t):<3} {e.observation_scores[t, b]:.2f}{rank}\n{action}\n"
            f"H {entropy[i]:.1f}  {' '.join(events)}"
        )
    return texts


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
    highlighted = np.isin(steps, top[top >= 0])
    frames = np.where(highlighted[:, None], _HIGHLIGHT, _WHITE)

    categoricals, classes = e.posterior_probs.shape[2:]
    sampled = np.zeros((n, categoricals, classes), dtype=bool)
    np.put_along_axis(sampled, e.stoch_classes[steps, b].astype(np.int64)[..., None], True, 2)
    activity = _colormap(_ACTIVITY_CMAP, e.step_scores[steps, b])[:, :, None, :]
    columns: list[tuple[np.ndarray, str, str | None]] = [
        (observation_rgb(e.observations[steps, b], _observed_channels(e)), "observation", None),
        (
            _colormap(_PROBS_CMAP, e.posterior_probs[steps, b], _PROBS_GAMMA),
            "posterior P\n[C x K]",
            _PROBS_CMAP,
        ),
        (np.where(sampled[..., None], 0.0, _UNSAMPLED), "sampled\nclasses", None),
        (
            np.where(sampled[..., None], activity, _UNSAMPLED),
            "activity on\nsampled",
            _ACTIVITY_CMAP,
        ),
    ]
    if e.beliefs.shape[0]:  # the decoder's reconstruction: what the model believes it sees
        beliefs = belief_rgb(e.beliefs[steps, b], _observed_channels(e))
        columns.insert(1, (beliefs, "decoded\nbelief", None))
    common = int(np.lcm.reduce([blocks.shape[1] for blocks, _, _ in columns]))
    common = common if common <= _ROW_CONTENT_PX else max(categoricals, 10)
    content = common * max(1, round(_ROW_CONTENT_PX / common))
    images = [_tiles(_scaled(blocks, content), frames) for blocks, _, _ in columns]
    pitch = images[0].shape[1]

    width = _TEXT_PX + sum(image.shape[2] + _GAP_PX for image in images) + _RIGHT_PX
    canvas = _Canvas(width, _HEADER_PX + pitch * max(n, 1))
    title = (
        f"{e.game} ({'POMDP' if e.pomdp else 'MDP'}), episode {b} (seed {e.seeds[b]}): "
        f"return {float(e.returns[b]):g}, {n} steps\nscore {e.config.score}, "
        f"layout {e.config.layout}, rank {e.rank}; top {len(top[top >= 0])} steps framed red"
    )
    canvas.text(15, 10, title, 1.5, va="top", linespacing=1.4)
    _legend(canvas, e, 56)
    x = _TEXT_PX + _GAP_PX
    for image, (_, title, cmap) in zip(images, columns, strict=True):
        columns_px = image.shape[2]
        if n:
            canvas.image(image.reshape(-1, columns_px, 3), x, _HEADER_PX)
        canvas.text(x + columns_px / 2, _HEADER_PX - 4, title, **_BOTTOM)
        if cmap is not None:
            gamma = _PROBS_GAMMA if cmap == _PROBS_CMAP else 1.0
            canvas.colorbar(cmap, gamma, x + 6, 92, columns_px - 12)
        x += columns_px + _GAP_PX
    canvas.text(12, _HEADER_PX - 4, _ROW_FIELDS, family="monospace", va="bottom", linespacing=1.3)
    for i, text in enumerate(_row_texts(e, b, steps)):
        style = _TOP_ROW if highlighted[i] else {}
        canvas.text(12, _HEADER_PX + pitch * (i + 0.5), text, family="monospace", **_ROW, **style)
    if not n:
        canvas.text(width / 2, _HEADER_PX + pitch / 2, "no valid steps", ha="center")
    return canvas.png(path)


def _strongest_categorical(explanation: Explanation, step: int, episode: int, factor: int) -> int:
    """Pooled layout: the categorical whose row excites ``factor`` most at (step, episode)."""
    e = explanation
    rows = np.flatnonzero((e.row_step == step) & (e.row_episode == episode))
    if not len(rows):
        return -1
    return int(e.row_categorical[rows[np.argmax(e.activations[rows, factor])]])


def _bar_blocks(heights: np.ndarray, bar: int = 7) -> np.ndarray:
    """Bar charts as pixels: ``[r, K]`` heights in [0, 1] -> ``[r, 60, K * bar, 3]`` RGB."""
    classes = heights.shape[1]
    level = np.arange(60, 0, -1)[None, :, None]  # each pixel row's height, top row highest
    filled = level <= np.maximum(np.round(heights * 58), 0)[:, None, :] + 1  # [r, 60, K]
    filled = np.repeat(filled, bar, axis=2) & (np.arange(classes * bar) % bar < bar - 2)
    return np.where(filled[..., None], _BAR, np.where(level[..., None] == 1, 0.6, 1.0))


def _highlights(associations: tuple[FactAssociation, ...], status: FactorStatus) -> str:
    """Short lines under a factor's name: why it makes no claims, or the event and the graded
    fact it is the significant claim of (precision vs the null's 95% quantile)."""
    if not status.claimable:
        return status.label.replace(" (", "\n(")
    factor = status.factor
    event, graded = factor_highlights(list(associations), factor)
    lines = []
    if event is not None:
        name = event.name.replace("executed_action=", "ran ")
        lines.append(f"{name}\n{event.per_factor[factor]:.0%} vs null {event.null_q95:.0%}")
    if graded is not None:
        lines.append(
            f"{graded.name}\nrho {graded.per_factor[factor]:+.2f} vs {graded.null_q95:.2f}"
        )
    if status.tie_fraction > 0:
        lines.append(f"{status.tie_fraction:.0%} of picks tied")
    return "\n".join(lines) or "no claim beats\nits null"


def render_factor_gallery(
    explanation: Explanation,
    *,
    path: str | os.PathLike[str] | None = None,
    claims: ClaimsTable | None = None,
) -> bytes:
    """One row per NMF factor: its prototype, then its top-k dataset examples.

    The prototype ``prototypes[j]`` is drawn as bars over the K classes (pooled layout) or as a
    ``C x K`` heatmap (per-step layout; magma, square-root scale); both are scaled so that 1 is
    the largest prototype entry. Each example is the observation
    ``factor_examples[j, i] = (step, episode)``, labelled with its step, episode, activation
    ``factor_activations[t, b, j]`` and, pooled, the categorical whose row excited the factor
    most. Under each factor's name: why it makes no claims (unstable, episode start), or the
    game event and the graded fact it is the significant claim of, each next to its null's 95%
    quantile (``semantics.factor_highlights``), and the share of its picks that were tied.
    With ``config.decoded``, a column before the examples shows each prototype decoded through
    the ObsDecoder in the context of its best example (``analysis/decoding.py``).

    Args:
        explanation: what to draw. path: also write the PNG there.
        claims: the explanation's :func:`~pytest_dreamer_audit.results.semantics.claims_table`
            when the caller has it already (computed here otherwise).

    Returns:
        The PNG file's bytes: ``96 + r x 104`` pixels high at :data:`DPI` for r factors.
    """
    e = explanation
    rank, k = e.factor_examples.shape[:2]
    categoricals, classes = e.posterior_probs.shape[2:]
    pooled = e.prototypes.shape[1] == classes and e.config.layout == "pooled"
    pairs = e.factor_examples.reshape(-1, 2)
    present = pairs[:, 0] >= 0
    obs = np.zeros((rank * k, *e.observations.shape[2:]), dtype=bool)
    obs[present] = e.observations[pairs[present, 0], pairs[present, 1]]
    white = np.tile(_WHITE, (rank * k, 1))
    tiles = _tiles(_scaled(observation_rgb(obs, _observed_channels(e)), 60), white, _LABEL_BAND_PX)
    tiles = np.pad(tiles, ((0, 0), (0, 0), (10, 10), (0, 0)), constant_values=1.0)  # label room
    pitch, tile = tiles.shape[1:3]
    grid = tiles.reshape(rank, k, pitch, tile, 3).transpose(0, 2, 1, 3, 4).reshape(-1, k * tile, 3)

    header, left = 96, 120
    peak = float(e.prototypes.max()) or 1.0
    if pooled:
        blocks, title = _bar_blocks(e.prototypes / peak), f"prototype (classes 0-{classes - 1})"
    else:
        values = e.prototypes.reshape(rank, categoricals, classes) / peak
        blocks, title = _colormap(_PROBS_CMAP, values, _PROBS_GAMMA), "prototype [C x K]"
    proto = _tiles(_scaled(blocks, 60), np.tile(_WHITE, (rank, 1)), _LABEL_BAND_PX)
    proto = proto.reshape(-1, proto.shape[2], 3)
    proto_px = proto.shape[1]
    decoded = None  # the prototypes decoded through the ObsDecoder, when computed
    if e.factor_decoded.shape[0]:
        views = _tiles(
            _scaled(belief_rgb(e.factor_decoded, _observed_channels(e)), 60),
            np.tile(_WHITE, (rank, 1)),
            _LABEL_BAND_PX,
        )
        views = np.pad(views, ((0, 0), (0, 0), (10, 10), (0, 0)), constant_values=1.0)
        decoded = views.reshape(-1, tile, 3)
    extra = tile + _GAP_PX if decoded is not None else 0
    width = max(left + proto_px + 2 * _GAP_PX + extra + k * tile + _RIGHT_PX, 600)
    canvas = _Canvas(width, header + rank * pitch)
    table = claims or claims_table(e)
    table_k = next((row.k for row in table.facts if row.kind == "event"), ClaimConfig().k)
    table_level = table.facts[0].level if table.facts else ClaimConfig().level
    title_text = (
        f"{e.game} ({'POMDP' if e.pomdp else 'MDP'}): {rank} factors, layout {e.config.layout}, "
        f"score {e.config.score}\neach factor's prototype and the {k} observations that excite "
        "it most (activation: maximum over the observation's NMF rows)\nunder each name: what "
        f"its top {table_k} beat their null at (level {table_level:g}), or why it claims nothing"
    )
    canvas.text(15, 8, title_text, 1.0, va="top", linespacing=1.35)
    x_examples = left + proto_px + 2 * _GAP_PX + extra
    if decoded is not None:
        x_decoded = x_examples - extra
        canvas.image(decoded, x_decoded, header)
        canvas.text(x_decoded + tile / 2, header - 3, "decoded", **_BOTTOM)
    canvas.text(x_examples + k * tile / 2, header - 3, f"top {k} dataset examples", **_BOTTOM)
    canvas.image(proto, left, header)
    canvas.text(left + proto_px / 2, header - 3, title, **_BOTTOM)
    canvas.image(grid, x_examples, header)
    for j in range(rank):
        best = int(e.prototypes[j].argmax())
        where = f"class {best}" if pooled else f"cat {best // classes},\nclass {best % classes}"
        name = f"factor {j}\npeak: {where}"
        canvas.text(12, header + pitch * j + 6, name, 0.5, va="top")
        below = 10 + 13 * (name.count("\n") + 1)  # 13 px per line of the name's font
        claim = _highlights(table.facts, table.factors[j]) if table.factors else ""
        canvas.text(12, header + pitch * j + below, claim, -1.0, va="top")
        y = header + pitch * (j + 1) - _LABEL_BAND_PX - 3
        if pooled:  # the class axis: first and last class under the bars
            for index in (0, classes - 1):
                x = left + _MARGIN_PX + _FRAME_PX + 7 * index + 2.5
                canvas.text(x, y, str(index), -1.0, **_TOP)
        for i in range(k):
            t, b = (int(v) for v in e.factor_examples[j, i])
            if t < 0:
                continue
            label = f"t {t}, ep {b}\nact {e.factor_activations[t, b, j]:.2f}"
            if pooled:
                label += f", cat {_strongest_categorical(e, t, b, j)}"
            canvas.text(x_examples + tile * (i + 0.5), y, label, -1.0, **_TOP)
    return canvas.png(path)
