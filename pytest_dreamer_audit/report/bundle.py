"""An explanation on disk with its pictures: the layout shared by the CLI and the plugin's cache.

``explanation.npz`` + ``summary.json`` come first (the arrays are useful even if a figure fails),
then ``rollout-<episode>.png`` for the first episodes and ``factors.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..results.explanation import Explanation

if TYPE_CHECKING:
    from ..results.semantics import ClaimsTable

__all__ = ["FACTORS_FILE", "rollout_file", "write_bundle"]

FACTORS_FILE = "factors.png"


def rollout_file(episode: int) -> str:
    """Name of the PNG of rollout ``episode``."""
    return f"rollout-{episode}.png"


def write_bundle(
    explanation: Explanation,
    directory: Path,
    render_episodes: int,
    progress: Callable[[str], None] | None = None,
    claims: ClaimsTable | None = None,
) -> list[Path]:
    """Save ``explanation`` and render it into ``directory``; the PNG paths, gallery last.
    ``claims`` is what the gallery may claim (``semantics.claims_table``; computed at the
    default level when the caller has none)."""
    from .render import render_factor_gallery, render_rollout

    note = progress or (lambda _label: None)
    note("save")
    explanation.save(directory)
    images = []
    for episode in range(min(render_episodes, explanation.episodes)):
        note(f"render rollout {episode}")
        path = directory / rollout_file(episode)
        render_rollout(explanation, episode, path=path)
        images.append(path)
    note("render factors")
    render_factor_gallery(explanation, path=directory / FACTORS_FILE, claims=claims)
    return [*images, directory / FACTORS_FILE]
