"""The imagination table: how well the world model predicts, open loop, against its nulls.

Plain values (standard library only, like ``values.py``), computed by
``analysis/imagination.py`` and saved in ``summary.json`` under ``"imagination"``. Each has
``to_json`` / ``from_json`` for the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError
from ..jsonvalues import from_json_number, to_json_number

__all__ = ["ALL_CHANNELS", "HeadPrediction", "ImaginationTable", "PredictionError"]

ALL_CHANNELS = -1
"""The ``channel`` of a row that pools every observation channel."""


def _plain(instance: object) -> dict[str, Any]:
    return {f.name: to_json_number(getattr(instance, f.name)) for f in fields(instance)}  # type: ignore[arg-type]


def _check_names(cls: type, data: Mapping[str, Any]) -> None:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if set(data) != names:
        raise ValueError(f"fields {sorted(set(data) ^ names)} missing or unexpected")


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class PredictionError:
    """The decoder's open-loop prediction of ``o_{t+h}`` at one horizon, in one channel.

    Every error is the mean negative log-likelihood per cell (nats) of the real ``o_{t+h}``
    under a Bernoulli with the prediction as its probability (clipped to
    ``[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]`` of ``analysis/imagination.py``), over the
    ``starts`` (t, episode) pairs whose ``t`` is analysed and whose ``t + h`` was recorded.

    Attributes:
        horizon: h. channel: the observation channel, or :data:`ALL_CHANNELS`.
        starts: (t, episode) pairs. changed_fraction: share of cells with ``o_{t+h} != o_t``.
        model_nll: the prior rolled h steps from the posterior at t under the actions taken,
            decoded.
        persistence_nll: ``o_t`` as the prediction, with each cell's flip probabilities fitted
            on these pairs (a calibrated persistence: a stronger null than ``o_t`` itself).
        randomized_nll: the same rollout with the dynamics (prior head, GRU, state-action
            embedding) permuted (``analysis/randomization.py``), the decoder kept.
        ceiling_nll: the decoder's reconstruction of ``o_{t+h}`` from its own posterior (what
            the decoder can do when it is told the answer).
        model_changed_accuracy, randomized_changed_accuracy, ceiling_changed_accuracy: share
            of the cells that change whose thresholded prediction (> 0.5) is right; persistence
            gets none of them right. NaN when no cell changes.
        p_persistence, p_randomized: one-sided p-values of the episode-level paired test that
            the model's error is below persistence's and the randomized model's (sign flips of
            the episodes' mean differences: exact up to ``EXACT_EPISODES`` episodes, seeded draws
            above).
    """

    horizon: int
    channel: int
    starts: int
    changed_fraction: float
    model_nll: float
    persistence_nll: float
    randomized_nll: float
    ceiling_nll: float
    model_changed_accuracy: float
    randomized_changed_accuracy: float
    ceiling_changed_accuracy: float
    p_persistence: float
    p_randomized: float

    @property
    def channel_name(self) -> str:
        return "all channels" if self.channel == ALL_CHANNELS else f"channel {self.channel}"

    def __str__(self) -> str:
        return (
            f"h={self.horizon} {self.channel_name}: model {self.model_nll:.4f} nats/cell, "
            f"persistence {self.persistence_nll:.4f} (p {self.p_persistence:.3g}), randomized "
            f"{self.randomized_nll:.4f} (p {self.p_randomized:.3g}), ceiling {self.ceiling_nll:.4f}"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PredictionError:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        _check_names(cls, data)
        counts = {"horizon", "channel", "starts"}
        values: dict[str, Any] = {
            name: _int(data[name]) if name in counts else from_json_number(data[name])
            for name in data
        }
        return cls(**values)


@dataclass(frozen=True)
class HeadPrediction:
    """The reward and discount heads at ``t + h``, open loop, at one horizon.

    Attributes:
        horizon: h. reward_events: pairs whose real reward (of the transition into
            ``o_{t+h}``) is positive, out of ``starts``.
        reward_auc: ROC AUC of the reward head on the imagined state against the real reward
            being positive (0.5: chance; NaN without both outcomes).
        reward_persistence_auc: the real reward into ``o_t`` as the prediction.
        reward_randomized_auc: the reward head on the randomized dynamics' imagined state.
        reward_ceiling_auc: the reward head on the posterior at ``t + h``.
        terminals: pairs whose episode ended on the transition into ``t + h``; discount_auc:
            AUC of the discount head's ``P(end)`` against them (NaN without both outcomes: a
            rollout shorter than the game's episodes has no terminal).
    """

    horizon: int
    starts: int
    reward_events: int
    reward_auc: float
    reward_persistence_auc: float
    reward_randomized_auc: float
    reward_ceiling_auc: float
    terminals: int
    discount_auc: float

    def __str__(self) -> str:
        return (
            f"h={self.horizon}: reward AUC {self.reward_auc:.3f} (persistence "
            f"{self.reward_persistence_auc:.3f}, randomized {self.reward_randomized_auc:.3f}, "
            f"ceiling {self.reward_ceiling_auc:.3f})"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HeadPrediction:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        _check_names(cls, data)
        counts = {"horizon", "starts", "reward_events", "terminals"}
        values: dict[str, Any] = {
            name: _int(data[name]) if name in counts else from_json_number(data[name])
            for name in data
        }
        return cls(**values)


@dataclass(frozen=True)
class ImaginationTable:
    """The whole imagination audit of one explanation.

    Attributes:
        horizons: the horizons, ascending. test: how the p-values were made (exact or drawn
            sign flips, and over how many episodes).
        errors: one :class:`PredictionError` per horizon and channel (all channels first).
        heads: one :class:`HeadPrediction` per horizon.
    """

    horizons: tuple[int, ...]
    test: str
    errors: tuple[PredictionError, ...]
    heads: tuple[HeadPrediction, ...]

    def error(self, horizon: int, channel: int | None = None) -> PredictionError:
        """The row of one horizon and channel (None: all channels); ConfigError listing the
        horizons and channels there are."""
        wanted = ALL_CHANNELS if channel is None else channel
        for row in self.errors:
            if row.horizon == horizon and row.channel == wanted:
                return row
        channels = sorted({row.channel for row in self.errors} - {ALL_CHANNELS})
        which = "all channels" if channel is None else f"channel {channel}"
        raise ConfigError(
            f"no imagination row for horizon {horizon}, {which}; "
            f"the horizons are {', '.join(map(str, self.horizons))} and the channels "
            f"{', '.join(map(str, channels))} (or None: all)"
        )

    def head(self, horizon: int) -> HeadPrediction:
        """The heads' row of one horizon; ConfigError listing the horizons there are."""
        for row in self.heads:
            if row.horizon == horizon:
                return row
        raise ConfigError(
            f"no imagination horizon {horizon}; the horizons are "
            f"{', '.join(map(str, self.horizons))}"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {
            "horizons": list(self.horizons),
            "test": self.test,
            "errors": [row.to_json() for row in self.errors],
            "heads": [row.to_json() for row in self.heads],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImaginationTable:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        _check_names(cls, data)
        return cls(
            horizons=tuple(_int(h) for h in data["horizons"]),
            test=str(data["test"]),
            errors=tuple(PredictionError.from_json(row) for row in data["errors"]),
            heads=tuple(HeadPrediction.from_json(row) for row in data["heads"]),
        )
