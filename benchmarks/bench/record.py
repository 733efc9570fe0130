"""The record of one run and its JSON file, ``<out>/<name>.json`` (schema 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agent import AgentDescription
from .codec import OMIT_NONE, from_json, to_json
from .end_to_end import EndToEndRow
from .machine import Machine
from .nmf import NMFSuite
from .render import RenderSuite
from .rollouts import RolloutSuite

SCHEMA = 1
SUITES = ("rollouts", "nmf", "render", "end_to_end")


@dataclass(frozen=True, kw_only=True)
class RunArgs:
    """The command line of a run, as recorded (``repeats`` as used, not as given)."""

    quick: bool
    device: str
    threads: int
    repeats: int
    checkpoint: str
    name: str | None
    sklearn_budget_s: float
    only: tuple[str, ...]
    note: tuple[str, ...]
    profile: bool
    table: str | None = None


@dataclass(frozen=True)
class Goal:
    """One performance goal (set on an H100) against this run."""

    goal: str
    measured: str
    met: bool | None
    """None where this run cannot tell (the goal is a GPU's and this run had none)."""

    def to_json(self) -> dict[str, str]:
        return {"goal": self.goal, "measured": self.measured, "met": self.met_text}

    @property
    def met_text(self) -> str:
        return "-" if self.met is None else str(self.met)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Goal:
        met = {"-": None, "True": True, "False": False}[data["met"]]
        return cls(data["goal"], data["measured"], met)


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """Everything one run measured; the field order is the file's key order."""

    schema: int
    name: str
    date: str
    """ISO 8601, UTC, to the second."""
    mode: str
    """``quick`` or ``full``."""
    args: RunArgs
    machine: Machine
    notes: tuple[str, ...]
    agent: AgentDescription
    rollouts: RolloutSuite | None = field(default=None, metadata=OMIT_NONE)
    nmf: NMFSuite | None = field(default=None, metadata=OMIT_NONE)
    render: RenderSuite | None = field(default=None, metadata=OMIT_NONE)
    end_to_end: tuple[EndToEndRow, ...] | None = field(default=None, metadata=OMIT_NONE)
    duration_s: float
    goals: tuple[Goal, ...] = ()


def write_results(result: RunResult, path: Path) -> None:
    path.write_text(json.dumps(to_json(result), indent=2) + "\n")


def read_results(path: Path) -> RunResult:
    return from_json(RunResult, json.loads(path.read_text()))
