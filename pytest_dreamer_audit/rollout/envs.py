"""MinAtar games through gymnasium, stepped as a batch, with the game facts an auditor needs.

Game facts are read from ``env.unwrapped`` (the gymnasium ``BaseEnv``) through the one documented
attribute MinAtar exposes for the game logic, ``BaseEnv.game`` (its ``Environment``), in one
place: :func:`_game_logic`. Facts come in two kinds, recorded on the same row ``t``:

* observation facts describe the state shown in observation ``o_t``;
* transition facts describe what happened when action ``a_t`` (chosen after seeing ``o_t``) ran.

Every game has the transition facts ``executed_action`` (the minimal-set index that really ran:
sticky actions repeat the previous one with probability 0.1) and ``sticky`` (1 when it differs
from the chosen action). Freeway adds ``chicken_row`` (0 = top, 9 = start), ``move_ready`` (1 when
the move timer is 0, so an up/down action takes effect this frame), ``car_adjacent`` (1 when a car
is in the chicken's row within one column of it), ``up_hits`` (below), ``scored`` and ``collision``.

``up_hits`` is 1 when pressing UP in this frame would get the chicken hit by a car (sent back to
the start without scoring), as MinAtar 1.0.15's ``freeway.Env.act`` plays the frame: the chicken
first moves to row ``p = max(0, pos - 1)`` if ``move_timer == 0`` (else stays, ``p = pos``);
reaching row 0 scores and resets it to row 9, where no car drives (so ``up_hits`` is 0); otherwise
it is hit when some car in row ``p`` is in the chicken's column 4 now, or its timer is 0 (it moves
this frame) and its next column, ``x + sign(speed)`` wrapped into 0..9, is 4. A finished episode
has ``up_hits`` 0 (the game ignores actions).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..games import FREEWAY_TRANSITION_FACTS, GENERIC_TRANSITION_FACTS, GameSpec, game_spec
from ..model.sampling import MAX_SEED

__all__ = ["GameBatch", "StepResult", "fact_names", "make_env"]

_FREEWAY_OBSERVATION_FACTS = ("chicken_row", "move_ready", "car_adjacent", "up_hits")
_FREEWAY_START_ROW = 9
_FREEWAY_CHICKEN_COLUMN = 4
_FREEWAY_COLUMNS = 10


def fact_names(game: str) -> tuple[str, ...]:
    """Names of the facts recorded for ``game``, in the order of the facts' last axis."""
    if game_spec(game).name == "freeway":
        return _FREEWAY_OBSERVATION_FACTS + GENERIC_TRANSITION_FACTS + FREEWAY_TRANSITION_FACTS
    return GENERIC_TRANSITION_FACTS


def _register_minatar() -> None:
    """Register MinAtar's games with gymnasium (gymnasium 1.x no longer loads plugins itself)."""
    import gymnasium

    if "MinAtar/Freeway-v1" in gymnasium.registry:
        return
    # MinAtar logs a warning through the root logger when seaborn (needed only for its own GUI)
    # is missing; that call would also install a stderr handler on the user's root logger.
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        import minatar.gym
    finally:
        logging.disable(previous)
        root.removeHandler(guard)
    minatar.gym.register_envs()


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


def _freeway_up_hits(logic: Any) -> bool:
    """Would UP in this frame get the chicken hit? (MinAtar's ``freeway.Env``; module docstring.)

    Read from the game state alone (``cars`` as ``[x, row, timer, speed]``, ``pos``,
    ``move_timer``, ``terminal``), without stepping or copying the game.
    """
    if logic.terminal:
        return False
    row = max(0, int(logic.pos) - 1) if logic.move_timer == 0 else int(logic.pos)
    if row == 0:  # scores; the chicken restarts in row 9, which has no cars
        return False
    for x, car_row, timer, speed in logic.cars:
        if car_row != row:
            continue
        moved = (x + (1 if speed > 0 else -1)) % _FREEWAY_COLUMNS
        if x == _FREEWAY_CHICKEN_COLUMN or (timer == 0 and moved == _FREEWAY_CHICKEN_COLUMN):
            return True
    return False


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
        self._is_freeway = self.spec.name == "freeway"
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
        if not self._is_freeway:
            return []
        logic = _game_logic(env).env
        row = int(logic.pos)
        adjacent = any(
            car[1] == row and abs(car[0] - _FREEWAY_CHICKEN_COLUMN) <= 1 for car in logic.cars
        )
        return [row, int(logic.move_timer == 0), int(adjacent), int(_freeway_up_hits(logic))]

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
        n_observation = len(_FREEWAY_OBSERVATION_FACTS) if self._is_freeway else 0
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
            facts = [executed, int(executed != chosen)]
            if self._is_freeway:
                facts += self._freeway_transition(before, executed, float(r), env)
                self._last_facts[b] = self._observation_facts(env)
                observation[b] = self._last_facts[b]
            transition[b] = facts
            states.append(state)
        return StepResult(self._obs(states), reward, terminal, transition, observation)

    def _freeway_transition(
        self, before: list[int], executed: int, reward: float, env: Any
    ) -> list[int]:
        """``[scored, collision]``: a collision sends the chicken back to the start unscored."""
        row, move_ready = before[0], before[1]
        name = self.spec.action_names[executed]
        expected = row
        if move_ready and name == "up":
            expected = max(0, row - 1)
        elif move_ready and name == "down":
            expected = min(_FREEWAY_START_ROW, row + 1)
        scored = reward > 0
        after = int(_game_logic(env).env.pos)
        collision = (not scored) and after == _FREEWAY_START_ROW and expected != _FREEWAY_START_ROW
        return [int(scored), int(collision)]
