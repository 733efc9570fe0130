"""Suite 4, end to end: what an audit does, stage by stage.

``load_checkpoint`` (of the private copy), ``run_rollouts`` (B x 50), ``explain`` with the agent
and the default ``ExplainConfig()`` (its stages split by its progress callback), then
``render_rollout`` for 4 episodes, ``render_top_steps`` of them and ``render_factor_gallery``
(the bundle's pictures, PNG bytes in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.report.render import (
    render_factor_gallery,
    render_rollout,
    render_top_steps,
)
from pytest_dreamer_audit.results.explanation import ExplainConfig

from .agent import STEPS, AgentSource, rollout
from .timing import Clock, Laps, StageTimer

RENDER_EPISODES = 4  # rollout grids per audit (the CLI's and the plugin's default)
MAIN_STAGES = ("load", "rollouts", "explain", "render")
CONFIG = (
    f"ExplainConfig() defaults: rank {ExplainConfig().rank}, {ExplainConfig().layout}, "
    f"{ExplainConfig().solver}, {ExplainConfig().stability_refits} stability refits, sanity and "
    f"deletion; {RENDER_EPISODES} rollout grids + their top steps + factor gallery"
)


@dataclass(frozen=True)
class StageTimes:
    """Seconds per stage of one audit, in the order they ran.

    The main stages are ``MAIN_STAGES``; explain's own stages follow ``explain`` as
    ``explain: <stage>`` (they are part of it). ``total`` is the sum of the main stages.
    """

    stages: tuple[tuple[str, float], ...]
    total: float

    def seconds(self, name: str) -> float | None:
        return dict(self.stages).get(name)

    def to_json(self) -> dict[str, float]:
        return {**dict(self.stages), "total": self.total}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageTimes:
        stages = tuple((name, value) for name, value in data.items() if name != "total")
        return cls(stages, data["total"])


@dataclass(frozen=True)
class EndToEndRow:
    episodes: int
    steps: int
    stages_s: StageTimes
    """The run with the smallest total."""
    totals_s: tuple[float, ...]
    """Every timed run's total."""
    config: str


def end_to_end(source: AgentSource, clock: Clock, episodes: int) -> StageTimes:
    """One audit of ``episodes`` x ``STEPS``: load, roll out, explain (with the agent), render."""
    laps = Laps(clock)
    agent = (
        load_checkpoint(source.path, device=clock.device)
        if source.path is not None
        else source.agent
    )
    laps.lap("load")
    trajectory = rollout(agent, episodes)
    laps.lap("rollouts")
    progress = StageTimer(clock)
    explanation = explain(trajectory, ExplainConfig(), agent=agent, progress=progress)
    progress.stop()
    laps.lap("explain")
    stages = dict(laps.seconds)
    for name, seconds in progress.seconds.items():
        stages[f"explain: {name}"] = seconds
    for episode in range(min(RENDER_EPISODES, episodes)):
        render_rollout(explanation, episode)
    render_top_steps(explanation, list(range(min(RENDER_EPISODES, explanation.episodes))))
    render_factor_gallery(explanation)
    laps.lap("render")
    stages["render"] = laps.seconds["render"]
    total = sum(v for k, v in stages.items() if k in MAIN_STAGES)
    return StageTimes(tuple(stages.items()), total)


def bench_end_to_end(
    source: AgentSource, clock: Clock, batches: list[int], repeats: int
) -> tuple[EndToEndRow, ...]:
    """The best of ``repeats`` audits after one warm-up, for each B in ``batches``."""
    rows = []
    for episodes in batches:
        end_to_end(source, clock, episodes)  # warm-up
        runs = [end_to_end(source, clock, episodes) for _ in range(max(1, repeats))]
        best = min(runs, key=lambda r: r.total)
        rows.append(EndToEndRow(episodes, STEPS, best, tuple(r.total for r in runs), CONFIG))
        print(f"  end to end {episodes} x {STEPS}: {best.total:.3f} s", flush=True)
    return tuple(rows)
