"""An explanation on disk with its pictures: the layout shared by the CLI and the plugin's cache.

``explanation.npz`` + ``summary.json`` come first (the arrays are useful even if a figure fails),
then ``rollout-<episode>.png`` for the first episodes (every step: the full grids),
``top-steps.png`` (only those rollouts' top-k steps: the compact figure a report embeds) and
``factors.png``.
:func:`caption` says what each picture is, in one place for the reports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from ..results.explanation import Explanation

if TYPE_CHECKING:
    from ..results.claims import ClaimsTable

__all__ = [
    "FACTORS_FILE",
    "TOP_STEPS_FILE",
    "IMAGINATION_FILE",
    "bundle_files",
    "caption",
    "is_full_grid",
    "rollout_file",
    "write_bundle",
]

FACTORS_FILE = "factors.png"
TOP_STEPS_FILE = "top-steps.png"
IMAGINATION_FILE = "imagination.png"
FILMSTRIP_FILE = "imagination-filmstrip.png"
FILMSTRIP_STARTS = 6
"""Start steps the filmstrip shows (evenly spaced over the first rollout)."""
_ROLLOUT_PREFIX = "rollout-"


def rollout_file(episode: int) -> str:
    """Name of the PNG of rollout ``episode``."""
    return f"{_ROLLOUT_PREFIX}{episode}.png"


def bundle_files(render_episodes: int, episodes: int, imagination: bool = False) -> list[str]:
    """The PNG names :func:`write_bundle` writes, in its order: the full grids of the first
    ``render_episodes`` rollouts, the compact figure of their top steps, the imagination's
    error against horizon when it was computed, the gallery."""
    rendered = min(render_episodes, episodes)
    extra = [IMAGINATION_FILE, FILMSTRIP_FILE] if imagination else []
    return [
        *(rollout_file(episode) for episode in range(rendered)),
        TOP_STEPS_FILE,
        *extra,
        FACTORS_FILE,
    ]


def is_full_grid(name: str) -> bool:
    """Whether a bundle PNG is a rollout's full grid (a report links it instead of embedding
    it: at a page's width it is several screens high)."""
    return Path(name).name.startswith(_ROLLOUT_PREFIX)


def caption(name: str, explanation: Explanation) -> str:
    """What a bundle PNG shows, in a sentence for a report's caption."""
    stem = Path(name).name
    k = explanation.top_observations.shape[1]
    score = explanation.config.score
    if is_full_grid(stem):
        episode = stem.removeprefix(_ROLLOUT_PREFIX).removesuffix(".png")
        return (
            f"rollout {episode}, every analysed step: observation, posterior, sampled classes and "
            f"activity per row; its top {k} steps by the {score} score framed red"
        )
    if stem == TOP_STEPS_FILE:
        return (
            f"the top {k} steps of the first rollouts by the {score} score, most important "
            "first, with the columns of the full grids (linked below)"
        )
    if stem == FILMSTRIP_FILE:
        return (
            "the first rollout's filmstrip: real frames, and under each the frame the world "
            "model imagined for it open-loop from h steps before (cells it got wrong outlined)"
        )
    if stem == IMAGINATION_FILE:
        return (
            "the world model's open-loop prediction error against horizon (all channels), with "
            "persistence, the randomized dynamics and the posterior's own reconstruction; each "
            "horizon's p-value against persistence under the axis"
        )
    if stem == FACTORS_FILE:
        return (
            f"factor gallery: for each of the {explanation.rank} factors, the observations that "
            "excite it most (dataset examples); a fact is named only where it beats its null"
        )
    return stem


def write_bundle(
    explanation: Explanation,
    directory: Path,
    render_episodes: int,
    progress: Callable[[str], None] | None = None,
    claims: ClaimsTable | None = None,
    imagined: np.ndarray | None = None,
) -> list[Path]:
    """Save ``explanation`` and render it into ``directory``; the PNG paths in
    :func:`bundle_files`' order, gallery last. ``claims`` is what the gallery may claim
    (``claims.claims_table``; computed at the default level when the caller has none).
    ``imagined``: the first rollout's imagined frames (``analysis.imagination.imagined_frames``,
    ``[H, L, channels, 10, 10]``), which only the agent can make; with the explanation's
    imagination table they become its filmstrip."""
    from .render import render_factor_gallery, render_rollout, render_top_steps

    note = progress or (lambda _label: None)
    note("save")
    explanation.save(directory)
    images = []
    rendered = range(min(render_episodes, explanation.episodes))
    for episode in rendered:
        note(f"render rollout {episode}")
        path = directory / rollout_file(episode)
        render_rollout(explanation, episode, path=path)
        images.append(path)
    note("render top steps")
    render_top_steps(explanation, list(rendered), path=directory / TOP_STEPS_FILE)
    images.append(directory / TOP_STEPS_FILE)
    if explanation.imagination is not None:
        from .imagination import render_imagination_plot

        note("render imagination")
        render_imagination_plot(explanation.imagination).png(directory / IMAGINATION_FILE)
        images.append(directory / IMAGINATION_FILE)
        if imagined is None:
            raise ConfigError(
                "the explanation has an imagination table but no imagined frames were given for "
                "its filmstrip; pass analysis.imagination.imagined_frames(agent, trajectory, 0, "
                "horizons)"
            )
        images.append(_filmstrip(explanation, imagined, directory / FILMSTRIP_FILE))
    note("render factors")
    render_factor_gallery(explanation, path=directory / FACTORS_FILE, claims=claims)
    return [*images, directory / FACTORS_FILE]


def _filmstrip(explanation: Explanation, imagined: np.ndarray, path: Path) -> Path:
    """The first rollout's filmstrip at up to :data:`FILMSTRIP_STARTS` evenly spaced starts."""
    from ..games import game_spec
    from .imagination import render_filmstrip

    assert explanation.imagination is not None, "checked by the caller"
    horizons = explanation.imagination.horizons
    valid = np.flatnonzero(explanation.valid[:, 0])
    usable = valid[valid < explanation.steps - max(horizons)]
    if not len(usable):
        raise ConfigError(
            f"the first rollout has no step {max(horizons)} steps before its end: no filmstrip; "
            "use shorter horizons or longer rollouts"
        )
    picks = np.unique(np.linspace(0, len(usable) - 1, FILMSTRIP_STARTS).round().astype(int))
    channels = tuple(game_spec(explanation.game).observed_channels(explanation.pomdp))
    canvas = render_filmstrip(
        explanation.observations[:, 0], imagined, horizons, channels, usable[picks].tolist()
    )
    canvas.png(path)
    return path
