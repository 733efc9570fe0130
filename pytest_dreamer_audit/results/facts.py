"""Which step each game fact refers to, and the facts as an observation shows them.

Row ``t`` of a rollout holds observation ``o_t``, the action ``a_t`` chosen after it, and two
kinds of facts (``rollout/envs.py``): observation facts describe the state ``o_t`` shows;
transition facts describe what happened when ``a_t`` ran, which only ``o_{t+1}`` can show. An
explanation scores observations, so a claim that "this observation shows a collision" must use
the collision as seen: the *visible* form of a transition fact, ``name_visible``, is the
transition fact one step later (row ``t`` holds the fact of the transition ``t - 1 -> t``; row 0
holds 0), within each episode. A transition that ends an episode has no next observation, so its
visible form does not exist.

NumPy and the foundation only.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..game_facts import GAME_FACTS
from .event_names import fact_of

__all__ = ["TRANSITION_FACTS", "VISIBLE_FACTS", "VISIBLE_SUFFIX", "step_of", "visible_form"]

VISIBLE_SUFFIX = "_visible"
_ALL_FACTS = [fact for facts in GAME_FACTS.values() for fact in facts]
TRANSITION_FACTS = frozenset(fact.name for fact in _ALL_FACTS if fact.step == "transition")
"""Facts of row ``t`` that describe what action ``a_t`` did (shown by ``o_{t+1}``), any game."""
VISIBLE_FACTS = MappingProxyType(
    {f"{name}{VISIBLE_SUFFIX}": name for name in sorted({f.name for f in _ALL_FACTS if f.visible})}
)
"""The visible form of each transition fact an observation can show, and its transition fact
(``game_facts.py``: ``Fact.visible``). ``executed_action`` and ``sticky`` stay transition facts:
they describe the agent's choice made after seeing ``o_t``, which is what an explanation of
``o_t`` may well explain; a transition that always ends the episode (Breakout's ``missed``) has
no observation after it."""


def step_of(name: str) -> str:
    """Which step row ``t`` of fact ``name`` refers to, in words (the README's table)."""
    fact = fact_of(name)  # "executed_action=left" and "ball_row>=5" refer to their fact's step
    if fact in VISIBLE_FACTS:
        return f"o_t: the transition t-1 -> t, as observation t shows it ({VISIBLE_FACTS[fact]})"
    if fact in TRANSITION_FACTS:
        return "a_t: the transition t -> t+1 (shown by observation t+1)"
    return "o_t: the state observation t shows"


def visible_form(transition: np.ndarray) -> np.ndarray:
    """Shift a ``[L, B]`` transition fact one step later along time (row 0 becomes 0).

    Shape:
        - transition: ``[L, B]``; output: ``[L, B]`` of the same dtype
    """
    result = np.zeros_like(transition)
    result[1:] = transition[:-1]
    return result
