"""MinAtar games through gymnasium, stepped as a batch, with the game facts an auditor needs.

Game facts are read from ``env.unwrapped`` (the gymnasium ``BaseEnv``) through the one documented
attribute MinAtar exposes for the game logic, ``BaseEnv.game`` (its ``Environment``), in one
place: :func:`_game_logic`; each game's reader (``rollout/facts_<game>.py``) turns that state
into the facts ``game_facts.GAME_FACTS`` lists and explains. Facts come in two kinds, recorded
on the same row ``t``:

* observation facts describe the state shown in observation ``o_t``;
* transition facts describe what happened when action ``a_t`` (chosen after seeing ``o_t``) ran.

Every game has the transition facts ``executed_action`` (the minimal-set index that really ran:
sticky actions repeat the previous one with probability 0.1) and ``sticky`` (1 when it differs
from the chosen action), followed by the game's own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..games import GameSpec, game_spec
from ..model.sampling import MAX_SEED
from . import facts_asterix, facts_breakout, facts_freeway, facts_seaquest, facts_space_invaders
from .facts_common import FactReader

__all__ = ["GameBatch", "StepResult", "fact_names", "make_env"]

_READERS: dict[str, FactReader] = {
    "asterix": facts_asterix.READER,
    "breakout": facts_breakout.READER,
    "freeway": facts_freeway.READER,
    "seaquest": facts_seaquest.READER,
    "space_invaders": facts_space_invaders.READER,
}


def fact_names(game: str) -> tuple[str, ...]:
    """Names of the facts recorded for ``game``, in the order of the facts' last axis."""
    return game_spec(game).fact_names


def _register_minatar() -> None:
    """Register MinAtar's games with gymnasium (gymnasium 1.x no longer loads plugins itself)."""
    import gymnasium

    if "MinAtar/Freeway-v1" in gymnasium.registry:
        return
    # MinAtar logs a warning through the root logger when seaborn (needed only for its own GUI)
    # is missing; that call would also install a stderr handler on the user's root logger.
    # Its display stack (pyplot, and seaborn, which pulls pandas and scipy.stats: 1.2 s when
    # MinAtar is imported alone) is blocked for that import unless the process has it: MinAtar
    # falls back without it, and the audit draws with its own canvas.
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    blocked = [name for name in _DISPLAY_STACK if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" raises ImportError
    try:
        import minatar.gym
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
        logging.disable(previous)
        root.removeHandler(guard)
    minatar.gym.register_envs()


_DISPLAY_STACK = ("matplotlib.pyplot", "seaborn")
"""What MinAtar's ``environment.py`` imports for its own GUI only."""


def make_env(game: str, *, sticky_action_prob: float = 0.1) -> Any:
    """A gymnasium MinAtar env with the minimal action set and MinAtar's sticky actions."""
    import gymnasium

    spec = game_spec(game)
    if not 0.0 <= sticky_action_prob <= 1.0:
        raise ConfigError(f"sticky_action_prob must be in [0, 1], got {sticky_action_prob}")
    _register_minatar()
    return gymnasium.make(
        spec.gym_id, disable_env_checker=True, sticky_action_prob=sticky_action_prob
    )


def _game_logic(env: Any) -> Any:
    """MinAtar's ``Environment`` behind a gymnasium env (holds ``env``, ``last_action``)."""
    return env.unwrapped.game


@dataclass(frozen=True)
class StepResult:
    """What one batched step returns.

    Attributes:
        obs: ``[B, channels, 10, 10]`` bool, the next observation (zeros where inactive).
        reward: ``[B]`` float32. terminal: ``[B]`` bool, the episode ended on this step.
        transition_facts: ``[B, F_t]`` int32, facts of the step (see module docstring).
        observation_facts: ``[B, F_o]`` int32, facts of the next observation.
    """

    obs: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    transition_facts: np.ndarray
    observation_facts: np.ndarray


class GameBatch:
    """``B`` copies of one game, reset with one seed each and stepped together.

    The envs are the only stateful objects of a rollout; an inactive (finished) episode is not
    stepped again and reports zeros.
    """

    def __init__(
        self, game: str, *, pomdp: bool, episodes: int, sticky_action_prob: float = 0.1
    ) -> None:
        if episodes < 1:
            raise ConfigError(f"episodes must be at least 1, got {episodes}")
        self.spec: GameSpec = game_spec(game)
        self.pomdp = pomdp
        self.channels = list(self.spec.observed_channels(pomdp))
        self.envs = [make_env(game, sticky_action_prob=sticky_action_prob) for _ in range(episodes)]
        first = self.envs[0].unwrapped
        self.action_set: list[int] = list(first.action_set)
        self._reader = _READERS[self.spec.name]
        self._observation_count = len(self.spec.observation_fact_names)
        self._last_facts: list[list[int]] = [[] for _ in self.envs]

    @property
    def episodes(self) -> int:
        return len(self.envs)

    @property
    def fact_names(self) -> tuple[str, ...]:
        return fact_names(self.spec.name)

    def _obs(self, states: Sequence[np.ndarray]) -> np.ndarray:
        """``B x [10, 10, C]`` game states -> ``[B, channels, 10, 10]`` bool."""
        stacked = np.stack(states)[..., self.channels]
        return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))

    def _observation_facts(self, env: Any) -> list[int]:
        return self._reader.observe(_game_logic(env))

    def reset(self, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Reset episode ``b`` with ``seeds[b]``.

        Returns:
            ``(obs [B, channels, 10, 10] bool, observation_facts [B, F_o] int32)``
        """
        if len(seeds) != self.episodes:
            raise ConfigError(f"got {len(seeds)} seeds for {self.episodes} episodes; give one each")
        for seed in seeds:
            if not 0 <= seed <= MAX_SEED:
                raise ConfigError(
                    f"seed {seed} is outside [0, {MAX_SEED}] (MinAtar's 32-bit seeds)"
                )
        states = [env.reset(seed=int(seed))[0] for env, seed in zip(self.envs, seeds, strict=True)]
        # Kept per env: the next step's transition facts need the facts of the frame before it.
        self._last_facts = [self._observation_facts(env) for env in self.envs]
        return self._obs(states), np.asarray(self._last_facts, dtype=np.int32).reshape(
            self.episodes, -1
        )

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult:
        """Step the active episodes with minimal-set action indices ``actions`` ``[B]``."""
        shape = (self.spec.channels, 10, 10)
        states: list[np.ndarray] = []
        reward = np.zeros(self.episodes, dtype=np.float32)
        terminal = np.zeros(self.episodes, dtype=bool)
        n_observation = self._observation_count
        n_transition = len(self.fact_names) - n_observation
        transition = np.zeros((self.episodes, n_transition), dtype=np.int32)
        observation = np.zeros((self.episodes, n_observation), dtype=np.int32)
        for b, env in enumerate(self.envs):
            if not active[b]:
                states.append(np.zeros(shape[1:] + shape[:1], dtype=bool))
                continue
            chosen = int(actions[b])
            before = self._last_facts[b]
            state, r, done, _, _ = env.step(chosen)
            executed = self.action_set.index(_game_logic(env).last_action)
            reward[b], terminal[b] = r, done
            name = self.spec.action_names[executed]
            own = self._reader.transition(before, name, float(r), bool(done), _game_logic(env))
            transition[b] = [executed, int(executed != chosen), *own]
            self._last_facts[b] = self._observation_facts(env)
            observation[b] = self._last_facts[b]
            states.append(state)
        return StepResult(self._obs(states), reward, terminal, transition, observation)
