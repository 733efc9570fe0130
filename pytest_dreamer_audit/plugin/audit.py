"""One audit = one checkpoint under one set of settings: agent, rollouts, explanation, pictures.

:class:`AuditCache` computes each of these once per settings and shares them: in memory within
a process, and on disk (``cache.py``) across pytest-xdist workers and across runs, keyed by the
checkpoint's content hash and the settings. The plugin's fixtures are thin wrappers around it.

A warm run (every entry cached) imports neither torch nor the networks: they are imported where
something is computed or an agent is asked for, so xdist workers start without them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SavedDataError
from ..report.bundle import bundle_files, write_bundle
from ..results.claims import ClaimsTable, claims_table
from ..results.explanation import Explanation, load_explanation
from ..settings import AuditSettings
from .cache import cached, code_digest, file_digest

if TYPE_CHECKING:
    import torch

    from ..model.agent import DreamerAgent
    from ..rollout.rollouts import Trajectory

__all__ = ["AuditCache", "AuditResult"]

TRAJECTORY_FILE = "trajectory.pt"


@dataclass(frozen=True)
class AuditResult:
    """An explanation with the files that show it.

    Attributes:
        settings: what was audited. key: its cache key.
        directory: the cache entry holding ``explanation.npz``, ``summary.json`` and the PNGs.
        explanation: the loaded :class:`Explanation`.
        images: rendered PNGs (rollout grids, then the factor gallery).
    """

    settings: AuditSettings
    key: str
    directory: Path
    explanation: Explanation
    images: tuple[Path, ...]

    @cached_property
    def claims(self) -> ClaimsTable:
        """What the explanation claims about the game, with nulls (``claims.claims_table``):
        computed once per explanation, not once per test."""
        return claims_table(self.explanation, self.settings.claim_config())


def _rollout_settings(settings: AuditSettings) -> AuditSettings:
    """Settings with the explanation-only fields at their defaults: the rollouts' cache key."""
    base = AuditSettings(checkpoint=settings.checkpoint)
    return dataclasses.replace(
        base,
        game=settings.game,
        pomdp=settings.pomdp,
        episodes=settings.episodes,
        steps=settings.steps,
        seed=settings.seed,
    )


Progress = Callable[[str, bool], None]
"""Told what is being computed: ``(line, detail)``; detail lines are the explanation's stages,
the others one line when a computation starts and one when it ends."""


class AuditCache:
    """Per-session memo of agents, trajectories and explanations over an on-disk cache.

    ``progress`` is told about every computation (a cache miss); hits are silent.
    """

    def __init__(self, root: Path, progress: Progress | None = None, *, threads: int = 1) -> None:
        self.root = root
        self.threads = threads
        self._progress: Progress = progress or (lambda _line, _detail: None)
        self._digests: dict[str, str] = {}
        self._agents: dict[tuple[str, str], DreamerAgent] = {}
        self._trajectories: dict[str, Trajectory] = {}
        self._results: dict[str, AuditResult] = {}

    def digest(self, checkpoint: str) -> str:
        path = str(Path(checkpoint).resolve())
        if path not in self._digests:
            self._digests[path] = file_digest(path)
        return self._digests[path]

    def device(self, settings: AuditSettings) -> torch.device:
        from ..model.devices import resolve_device

        return resolve_device(settings.device)

    def agent(self, settings: AuditSettings) -> DreamerAgent:
        device = self.device(settings)
        memo = (str(Path(settings.checkpoint).resolve()), str(device))
        if memo not in self._agents:
            from ..model.checkpoint import load_checkpoint
            from ..model.devices import apply_threads

            apply_threads(self.threads)
            self._agents[memo] = load_checkpoint(settings.checkpoint, device=device)
        return self._agents[memo]

    def trajectory(self, settings: AuditSettings) -> Trajectory:
        rollout = _rollout_settings(settings)
        key = "rollouts-" + rollout.key(self.digest(settings.checkpoint), code_digest())
        if key not in self._trajectories:
            from ..rollout.rollouts import audit_rollouts, load_trajectory, save_trajectory

            agent = self.agent(settings)

            def build(directory: Path) -> None:
                target = settings.check_agent(
                    agent.sizes, agent.metadata.game, agent.metadata.pomdp
                )
                self._progress(
                    f"{settings.label}: rolling out {settings.episodes} x {settings.steps}", False
                )
                trajectory = audit_rollouts(agent, settings, target)
                save_trajectory(trajectory, directory / TRAJECTORY_FILE)

            def load(entry: Path) -> Trajectory:
                trajectory = load_trajectory(entry / TRAJECTORY_FILE, agent.device)
                _check_matches(trajectory.episodes, trajectory.steps, rollout)
                return trajectory

            _, self._trajectories[key] = cached(self.root, key, build, load)
        return self._trajectories[key]

    def explanation(self, settings: AuditSettings) -> AuditResult:
        key = "explanation-" + settings.key(self.digest(settings.checkpoint), code_digest())
        if key not in self._results:
            names = bundle_files(settings.render_episodes, settings.episodes)

            def build(directory: Path) -> None:
                from ..analysis.pipeline import explain

                agent = self.agent(settings)
                trajectory = self.trajectory(settings)
                what = f"{settings.label} ({settings.score} score, {settings.layout} layout)"
                self._progress(f"{what}: explaining", False)
                start = time.perf_counter()
                result = explain(
                    trajectory,
                    settings.explain_config(),
                    agent=agent,
                    progress=lambda stage: self._progress(f"{what}: {stage}", True),
                )
                self._progress(f"{what}: explained in {time.perf_counter() - start:.1f} s", False)
                table = claims_table(result, settings.claim_config())
                write_bundle(result, directory, settings.render_episodes, claims=table)
                (directory / "settings.json").write_text(
                    json.dumps(dataclasses.asdict(settings), indent=2, sort_keys=True) + "\n"
                )

            def load(entry: Path) -> Explanation:
                explanation = load_explanation(entry)
                _check_matches(explanation.episodes, explanation.steps, settings)
                if explanation.config != settings.explain_config():
                    raise SavedDataError("its explanation config is not the one its key stands for")
                missing = [name for name in names if not (entry / name).is_file()]
                if missing:
                    raise SavedDataError(f"pictures {missing} are missing")
                return explanation

            entry, explanation = cached(self.root, key, build, load)
            self._results[key] = AuditResult(
                settings=settings,
                key=key,
                directory=entry,
                explanation=explanation,
                images=tuple(entry / name for name in names),
            )
        return self._results[key]


def _check_matches(episodes: int, steps: int, settings: AuditSettings) -> None:
    """A cached result must have the size its key stands for."""
    if (episodes, steps) != (settings.episodes, settings.steps):
        raise SavedDataError(
            f"it holds {episodes} x {steps} steps, but its key stands for "
            f"{settings.episodes} x {settings.steps}"
        )
