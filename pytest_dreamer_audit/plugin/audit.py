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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SavedDataError
from ..report.bundle import bundle_files, write_bundle
from ..results.claims import ClaimsTable, claims_table
from ..results.explanation import Explanation, load_explanation
from ..settings import AuditSettings
from .cache import cached, code_digest
from .digests import file_digest, read_checked

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
        settings: what was audited (the file named is the requesting test's: files with the same
            bytes share the rest). key: its cache key.
        directory: the cache entry holding ``explanation.npz``, ``summary.json`` and the PNGs.
        explanation: the loaded :class:`Explanation`.
        images: rendered PNGs (rollout grids, then the factor gallery).
    """

    settings: AuditSettings
    key: str
    directory: Path
    explanation: Explanation
    images: tuple[Path, ...]

    shared: dict[str, ClaimsTable] = field(default_factory=dict, compare=False, repr=False)
    """What is computed once per explanation and shared by the results of every file with the
    same bytes (``dataclasses.replace`` keeps this dict)."""

    @property
    def claims(self) -> ClaimsTable:
        """What the explanation claims about the game, with nulls (``claims.claims_table``):
        computed once per explanation, not once per test."""
        if "claims" not in self.shared:
            self.shared["claims"] = claims_table(self.explanation, self.settings.claim_config())
        return self.shared["claims"]


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
        self._agents: dict[tuple[str, ...], DreamerAgent] = {}
        self._trajectories: dict[str, Trajectory] = {}
        self._results: dict[str, AuditResult] = {}

    def digest(self, checkpoint: str) -> str:
        """The checkpoint's SHA-256, hashed once per session: every key of this session is made
        from it, and :meth:`agent` loads only bytes that have it."""
        path = str(Path(checkpoint).resolve())
        if path not in self._digests:
            self._digests[path] = file_digest(path)
        return self._digests[path]

    def device(self, settings: AuditSettings) -> torch.device:
        from ..model.devices import resolve_device

        return resolve_device(settings.device)

    def agent(self, settings: AuditSettings) -> DreamerAgent:
        """The agent of the checkpoint's bytes as hashed for this session's keys (read once,
        checked against that digest, loaded from the same bytes), so that a result is never
        filed under the key of bytes it was not computed from."""
        device = self.device(settings)
        digest = self.digest(settings.checkpoint)
        memo = (digest, str(device), *map(str, settings.split))
        if memo not in self._agents:
            from ..model.checkpoint import load_checkpoint
            from ..model.devices import apply_threads

            content = read_checked(settings.checkpoint, digest)
            apply_threads(self.threads)
            categoricals, classes = settings.split
            self._agents[memo] = load_checkpoint(
                settings.checkpoint,
                device=device,
                content=content,
                categoricals=categoricals,
                classes=classes,
            )
        return self._agents[memo]

    def trajectory(self, settings: AuditSettings) -> Trajectory:
        rollout = _rollout_settings(settings)
        key = "rollouts-" + rollout.key(self.digest(settings.checkpoint), code_digest())
        if key not in self._trajectories:
            from ..rollout.rollouts import load_trajectory, save_trajectory

            agent = self.agent(settings)

            def build(directory: Path) -> None:
                target = settings.check_agent(
                    agent.sizes, agent.metadata.game, agent.metadata.pomdp
                )
                self._progress(
                    f"{settings.label}: rolling out {settings.episodes} x {settings.steps}", False
                )
                trajectory = settings.rollouts(agent, target)
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
            names = bundle_files(
                settings.render_episodes, settings.episodes, bool(settings.imagination)
            )

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
                imagined = None
                if settings.imagination:
                    from ..analysis.imagination import imagined_frames

                    imagined = imagined_frames(agent, trajectory, 0, settings.imagination)
                write_bundle(
                    result, directory, settings.render_episodes, claims=table, imagined=imagined
                )
                (directory / "settings.json").write_text(
                    json.dumps(dataclasses.asdict(settings), indent=2, sort_keys=True) + "\n"
                )

            def load(entry: Path) -> tuple[Path, Explanation]:
                explanation = load_explanation(entry)
                _check_matches(explanation.episodes, explanation.steps, settings)
                if explanation.config != settings.explain_config():
                    raise SavedDataError("its explanation config is not the one its key stands for")
                missing = [name for name in names if not (entry / name).is_file()]
                if missing:
                    raise SavedDataError(f"pictures {missing} are missing")
                return entry, explanation  # the verified private copy: its pictures are shown

            _, (copy, explanation) = cached(self.root, key, build, load, keep_copy=True)
            self._results[key] = AuditResult(
                settings=settings,
                key=key,
                directory=copy,
                explanation=explanation,
                images=tuple(copy / name for name in names),
            )
        # Files with identical bytes share one explanation; each test's result names its own.
        return dataclasses.replace(self._results[key], settings=settings)


def _check_matches(episodes: int, steps: int, settings: AuditSettings) -> None:
    """A cached result must have the size its key stands for."""
    if (episodes, steps) != (settings.episodes, settings.steps):
        raise SavedDataError(
            f"it holds {episodes} x {steps} steps, but its key stands for "
            f"{settings.episodes} x {settings.steps}"
        )
