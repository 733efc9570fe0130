"""Timers: wall-clock runs on one device, best of several, and laps of a multi-stage job."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Wall times of one piece of work, in seconds."""

    best_s: float
    """The minimum of the timed runs: the figure the tables report."""
    times_s: tuple[float, ...]
    """Every timed run, in order."""
    warmup_s: float | None
    """The first untimed warm-up run, or None when there was none."""


@dataclass(frozen=True)
class Clock:
    """Wall-clock timing on one device; CUDA work is synchronised before each reading."""

    device: torch.device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def once(self, work: Callable[[], T]) -> tuple[float, T]:
        """Seconds of one run of ``work``, and its value."""
        self.sync()
        start = time.perf_counter()
        value = work()
        self.sync()
        return time.perf_counter() - start, value

    def best_of(self, repeats: int, work: Callable[[], T], warmup: int = 1) -> tuple[Timing, T]:
        """Minimum of ``repeats`` timed runs after ``warmup`` untimed ones; the last run's value."""
        first = None
        for _ in range(warmup):
            elapsed, _ = self.once(work)
            first = elapsed if first is None else first
        times = []
        for _ in range(max(1, repeats)):
            elapsed, value = self.once(work)
            times.append(elapsed)
        return Timing(min(times), tuple(times), first), value


class Laps:
    """Consecutive laps of one job: ``lap(name)`` records the seconds since the previous lap."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, name: str) -> None:
        self.clock.sync()
        now = time.perf_counter()
        self.seconds[name] = now - self._start
        self._start = now


class StageTimer:
    """``explain``'s progress callback: wall time of each stage (synchronised on CUDA).

    The stability refits report one label per refit; they are summed as one stage.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self._label: str | None = None
        self._start = 0.0

    def __call__(self, label: str) -> None:
        self.stop()
        self._label = "stability refits" if label.startswith("stability") else label
        self._start = time.perf_counter()

    def stop(self) -> None:
        """End the running stage (call once after the job)."""
        self.clock.sync()
        if self._label is not None:
            elapsed = time.perf_counter() - self._start
            self.seconds[self._label] = self.seconds.get(self._label, 0.0) + elapsed
        self._label = None
