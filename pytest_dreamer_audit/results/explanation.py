"""The result of an explanation: plain NumPy arrays and numbers, saved as ``.npz`` + JSON.

Torch-free on purpose: the pytest plugin, the report hooks and the renderer read explanations
from disk (the cross-worker cache) without importing torch.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SavedDataError
from ..files import atomic_text, atomic_write
from ..games import GAMES
from ..jsonvalues import to_json_number
from .config import LAYOUTS, SCORES, ExplainConfig
from .event_names import parse_event_name
from .facts import VISIBLE_FACTS, visible_form
from .imagination import ImaginationTable
from .trustworthy import trust_verdicts
from .values import CurveSet, ProbeRow, RandomizationStage, TrustMetrics

__all__ = ["LAYOUTS", "SCORES", "ExplainConfig", "Explanation", "TrustMetrics", "load_explanation"]

ARRAYS_FILE = "explanation.npz"
SUMMARY_FILE = "summary.json"
SUMMARY_VERSION = 2


@dataclass(frozen=True, eq=False)
class Explanation:
    """An explained rollout batch: factors, scores, top observations, dataset examples, metrics.

    Shapes use L steps, B episodes, C categoricals, K classes, r factors, k = top_k, M the row
    width (K pooled, C*K per step), R the number of NMF rows. Scores are normalised to [0, 1]
    by dividing by their maximum over valid entries (1 = the most important); invalid
    (after-the-end) entries are 0.

    Attributes:
        game, pomdp, seeds, action_names, fact_names: what was rolled out.
        config: the :class:`ExplainConfig`. metrics: the :class:`TrustMetrics`.
        prototypes: ``[r, M]`` unit-norm prototype rows D.
        activations: ``[R, r]`` activations A of each NMF row.
        row_step, row_episode, row_categorical: ``[R]`` where each row came from
            (row_categorical is -1 in the per-step layout).
        row_scores: ``[R]`` normalised score of each row.
        step_scores: ``[L, B, C]`` normalised importance of each (step, episode, categorical).
        observation_scores: ``[L, B]`` normalised importance of each observation.
        top_observations: ``[B, k]`` the most important steps of each rollout, best first
            (-1 pads rollouts with fewer valid steps than k).
        factor_activations: ``[L, B, r]`` how strongly each observation excites each factor
            (maximum over its rows).
        factor_examples: ``[r, k, 2]`` (step, episode) of each factor's top dataset examples
            (ties broken across episodes: ``results/picks.py``).
        factor_stability: ``[r]`` each prototype's smallest matched cosine over the stability
            refits (NaN without refits).
        beliefs: ``[L, B, channels, 10, 10]`` the decoder's reconstruction of each step from
            its posterior (``analysis/decoding.py``); ``[0, ...]`` unless ``config.decoded``.
        factor_decoded: ``[r, channels, 10, 10]`` each factor's prototype decoded; ``[0, ...]``
            unless ``config.decoded``.
        observations: ``[L, B, channels, 10, 10]`` bool, channels named by
            :attr:`observation_channels`. posterior_probs: ``[L, B, C, K]``.
        stoch_classes: ``[L, B, C]`` the sampled class of each categorical.
        actions: ``[L, B]``. rewards: ``[L, B]`` (0 after an episode's end).
        valid: ``[L, B]`` bool, the analysed steps: recorded, and not in the first
            ``config.skip_steps`` steps.
        randomization: the model parameter randomization stages (``analysis/randomization.py``),
            the full randomization first; empty without an agent.
        probes: each game fact probed from the latents and their controls
            (``results/probes.py``); empty unless ``config.probes``.
        curves: the deletion and insertion curves of every head (``analysis/curves.py``);
            empty unless ``config.curves``.
        imagination: the world model's open-loop predictions against their nulls
            (``analysis/imagination.py``); None unless ``config.imagination``.
        facts: ``[L, B, F]`` game facts as recorded (names in fact_names; every fact, with the
            visible forms of transition facts, through :meth:`fact` and :attr:`all_fact_names`).
    """

    game: str
    pomdp: bool
    seeds: tuple[int, ...]
    action_names: tuple[str, ...]
    fact_names: tuple[str, ...]
    config: ExplainConfig
    metrics: TrustMetrics
    prototypes: np.ndarray
    activations: np.ndarray
    row_step: np.ndarray
    row_episode: np.ndarray
    row_categorical: np.ndarray
    row_scores: np.ndarray
    step_scores: np.ndarray
    observation_scores: np.ndarray
    top_observations: np.ndarray
    factor_activations: np.ndarray
    factor_examples: np.ndarray
    factor_stability: np.ndarray
    beliefs: np.ndarray
    factor_decoded: np.ndarray
    observations: np.ndarray
    posterior_probs: np.ndarray
    stoch_classes: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    valid: np.ndarray
    facts: np.ndarray
    randomization: tuple[RandomizationStage, ...] = ()
    probes: tuple[ProbeRow, ...] = ()
    curves: tuple[CurveSet, ...] = ()
    imagination: ImaginationTable | None = None

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Explanation(game={self.game!r}, pomdp={self.pomdp}, {self.episodes} episodes x "
            f"{self.steps} steps, rank {c.rank}, {c.layout} layout, {c.score} score)"
        )

    @property
    def steps(self) -> int:
        return int(self.valid.shape[0])

    @property
    def episodes(self) -> int:
        return int(self.valid.shape[1])

    @property
    def rank(self) -> int:
        return int(self.prototypes.shape[0])

    @property
    def returns(self) -> np.ndarray:
        """``[B]`` sum of the rewards per episode (skipped steps included)."""
        return self.rewards.sum(axis=0)

    @property
    def all_fact_names(self) -> tuple[str, ...]:
        """The recorded facts and the visible form of each transition fact recorded
        (``results/facts.py``)."""
        extra = tuple(name for name, of in VISIBLE_FACTS.items() if of in self.fact_names)
        return self.fact_names + extra

    def fact(self, name: str) -> np.ndarray:
        """One game fact ``[L, B]`` by any name a report row shows (``results/event_names.py``).

        A recorded fact (``"ball_row"``), a visible form (``"brick_hit_visible"``), an action
        (``"executed_action=left"``: 0/1) or a fact compared with a number
        (``"bricks_left<=10"``: 0/1). A wrong name gets the facts there are and "did you mean".

        Example:
            >>> misses = explanation.fact("miss_coming")  # doctest: +SKIP
            >>> lefts = explanation.fact("executed_action=left")  # doctest: +SKIP
        """
        if name in self.fact_names:
            return self.facts[..., self.fact_names.index(name)]
        if name in VISIBLE_FACTS and VISIBLE_FACTS[name] in self.fact_names:
            return visible_form(self.fact(VISIBLE_FACTS[name]))
        event = parse_event_name(
            name, game=self.game, facts=self.all_fact_names, actions=self.action_names
        )
        return event.evaluate(self.fact(event.fact))

    @property
    def observation_channels(self) -> tuple[str, ...]:
        """The name of each channel of :attr:`observations` (axis 2), MinAtar's names of the
        game's channels, the POMDP subset where :attr:`pomdp` (``games.py``)."""
        spec = GAMES.get(self.game)
        count = self.observations.shape[2]
        names = spec.observed_channel_names(self.pomdp) if spec else ()
        return names if len(names) == count else tuple(f"channel{c}" for c in range(count))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: what was explained, the config, the metrics and the default
        trust checks' verdicts (``results/trustworthy.py``, default thresholds)."""
        metrics = self.metrics.to_json()
        return {
            "summary_version": SUMMARY_VERSION,
            "game": self.game,
            "pomdp": self.pomdp,
            "seeds": list(self.seeds),
            "episodes": self.episodes,
            "steps": self.steps,
            "valid_steps": int(self.valid.sum()),
            "action_names": list(self.action_names),
            "fact_names": list(self.fact_names),
            "config": asdict(self.config),
            "metrics": metrics,
            "trust_checks": [verdict.to_json() for verdict in trust_verdicts(self.metrics)],
            "factor_stability": [to_json_number(float(v)) for v in self.factor_stability],
            "randomization": [stage.to_json() for stage in self.randomization],
            "probes": [row.to_json() for row in self.probes],
            "curves": [curve.to_json() for curve in self.curves],
            "imagination": None if self.imagination is None else self.imagination.to_json(),
            "mean_return": float(self.returns.mean()),
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``explanation.npz`` and ``summary.json`` into ``directory``, each atomically."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = self.arrays()
        # Uncompressed: the cache is local, and at 64 x 50 compressing took 0.52 s against
        # 0.009 s (loading 0.064 against 0.014 s) for 6.3 against 10.8 MB (best of 3, one run,
        # the 2-core VM; issue 33).
        atomic_write(target / ARRAYS_FILE, lambda stream: np.savez(stream, **arrays))
        text = json.dumps(self.summary(), indent=2, sort_keys=True) + "\n"
        atomic_text(target / SUMMARY_FILE, text)
        return target


def load_explanation(directory: str | os.PathLike[str]) -> Explanation:
    """Read an explanation written by :meth:`Explanation.save`.

    Raises:
        SavedDataError: naming the directory, when a file is missing, unreadable, of another
            format version, or holds values of the wrong kind.
    """
    source = Path(directory)

    def damaged(problem: str) -> SavedDataError:
        return SavedDataError(
            f"{source}: not a readable explanation ({problem}); write it with Explanation.save "
            "or rerun the explanation"
        )

    try:
        summary = json.loads((source / SUMMARY_FILE).read_text())
        with np.load(source / ARRAYS_FILE, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise damaged(f"{type(error).__name__}: {error}") from None
    if not isinstance(summary, dict):
        raise damaged(f"{SUMMARY_FILE} holds a {type(summary).__name__}, not an object")
    if summary.get("summary_version") != SUMMARY_VERSION:
        raise SavedDataError(
            f"{source}: explanation format {summary.get('summary_version')!r}, expected "
            f"{SUMMARY_VERSION}; rerun the explanation with this version"
        )
    expected = {f.name for f in fields(Explanation)} - {
        "game",
        "pomdp",
        "seeds",
        "action_names",
        "fact_names",
        "config",
        "metrics",
        "randomization",
        "probes",
        "curves",
        "imagination",
    }
    if set(arrays) != expected:
        raise damaged(f"arrays {sorted(set(arrays) ^ expected)} missing or unexpected")
    try:
        explanation = Explanation(
            game=str(summary["game"]),
            pomdp=bool(summary["pomdp"]),
            seeds=tuple(int(seed) for seed in summary["seeds"]),
            action_names=tuple(str(name) for name in summary["action_names"]),
            fact_names=tuple(str(name) for name in summary["fact_names"]),
            config=ExplainConfig(**{"trust_episodes": 0, **summary["config"]}),
            metrics=TrustMetrics.from_json(summary["metrics"]),
            randomization=tuple(
                RandomizationStage.from_json(stage) for stage in summary["randomization"]
            ),
            probes=tuple(ProbeRow.from_json(row) for row in summary["probes"]),
            curves=tuple(CurveSet.from_json(curve) for curve in summary["curves"]),
            imagination=_imagination(summary.get("imagination")),
            **arrays,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise damaged(f"{SUMMARY_FILE}: {type(error).__name__}: {error}") from None
    problem = _inconsistency(explanation)
    if problem:
        raise damaged(problem)
    return explanation


def _imagination(data: Any) -> ImaginationTable | None:
    """The saved imagination table; None where it was off (or the summary predates it)."""
    return None if data is None else ImaginationTable.from_json(data)


def _inconsistency(e: Explanation) -> str:
    """What makes ``e`` something :func:`explain` cannot have written ("" when nothing)."""
    if e.game not in GAMES:
        return f"unknown game {e.game!r}"
    spec = GAMES[e.game]
    if e.action_names != spec.action_names:
        return f"action names {e.action_names} are not {e.game}'s"
    if e.valid.ndim != 2 or e.valid.dtype != np.bool_:
        return "valid is not an [L, B] bool array"
    steps, episodes = e.valid.shape
    if len(e.seeds) != episodes:
        return f"{len(e.seeds)} seeds for {episodes} episodes"
    if e.posterior_probs.ndim != 4 or e.posterior_probs.shape[:2] != (steps, episodes):
        return "posterior_probs is not [L, B, C, K]"
    cats, classes = e.posterior_probs.shape[2:]
    rank = e.prototypes.shape[0] if e.prototypes.ndim == 2 else -1
    width = classes if e.config.layout == "pooled" else cats * classes
    channels = len(spec.observed_channels(e.pomdp))
    shapes: dict[str, tuple[int, ...]] = {
        "observations": (steps, episodes, channels, 10, 10),
        "stoch_classes": (steps, episodes, cats),
        "actions": (steps, episodes),
        "rewards": (steps, episodes),
        "facts": (steps, episodes, len(e.fact_names)),
        "prototypes": (e.config.rank, width),
        "step_scores": (steps, episodes, cats),
        "observation_scores": (steps, episodes),
        "factor_activations": (steps, episodes, rank),
        "factor_stability": (rank,),
    }
    for name, shape in shapes.items():
        if getattr(e, name).shape != shape:
            return f"{name} has shape {getattr(e, name).shape}, expected {shape}"
    views = {
        "beliefs": (steps, episodes, channels, 10, 10),
        "factor_decoded": (rank, channels, 10, 10),
    }
    for name, shape in views.items():
        values = getattr(e, name)
        if values.shape not in (shape, (0, *shape[1:])) or values.dtype.kind != "f":
            return f"{name} has shape {values.shape}, expected {shape} or none"
        if not np.isfinite(values).all():
            return f"{name} is not an array of finite floats"
    rows = e.activations.shape[0] if e.activations.ndim == 2 else -1
    for name in ("row_step", "row_episode", "row_categorical", "row_scores"):
        if getattr(e, name).shape != (rows,):
            return f"{name} does not have one entry per NMF row"
    if e.activations.shape != (rows, rank):
        return f"activations have shape {e.activations.shape}, expected ({rows}, {rank})"
    if e.top_observations.ndim != 2 or e.top_observations.shape[0] != episodes:
        return "top_observations is not [B, k]"
    if e.factor_examples.ndim != 3 or e.factor_examples.shape[::2] != (rank, 2):
        return "factor_examples is not [r, k, 2]"
    integer = ("stoch_classes", "actions", "facts", "row_step", "row_episode", "row_categorical",
               "top_observations", "factor_examples")  # fmt: skip
    for name in integer:
        if getattr(e, name).dtype.kind not in "iu":
            return f"{name} is not an integer array"
    if e.observations.dtype != np.bool_:
        return "observations is not a bool array"
    for name in ("posterior_probs", "prototypes", "activations", "row_scores", "step_scores",
                 "observation_scores", "factor_activations", "rewards"):  # fmt: skip
        values = getattr(e, name)
        if values.dtype.kind != "f" or not np.isfinite(values).all():
            return f"{name} is not an array of finite floats"
    for name in ("posterior_probs", "prototypes", "activations", "factor_activations"):
        if (getattr(e, name) < 0).any():
            return f"{name} has negative values"
    stability = e.factor_stability
    if stability.dtype.kind != "f" or (np.abs(stability[~np.isnan(stability)]) > 1 + 1e-6).any():
        return "factor_stability is not an array of cosines"
    after_end = ~e.valid & (np.arange(steps) >= e.config.skip_steps)[:, None]
    if (e.rewards[after_end] != 0).any():
        return "rewards after an episode's end"
    if ((e.actions < 0) | (e.actions >= spec.actions)).any():
        return "actions outside the game's action set"
    if ((e.top_observations < -1) | (e.top_observations >= steps)).any():
        return "top_observations outside the rollout"
    computed = () if e.imagination is None else e.imagination.horizons
    if computed != e.config.imagination:
        return (
            f"imagination horizons {list(computed)}, config asks for {list(e.config.imagination)}"
        )
    return ""
