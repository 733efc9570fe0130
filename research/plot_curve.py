"""Draw learning curves written by ``research/train_reference_agent.py`` as one PNG.

    python research/plot_curve.py research/runs/freeway_pomdp.curve.csv \\
        --label "main run" --out examples/checkpoints/freeway_pomdp.curve.png

Each CSV (one per run, in the order given) is drawn against env steps: the selection evaluation's
sampled and greedy returns (full episodes on the selection seeds) in the top panel, with the
training episodes' mean return (epsilon-greedy play, as logged) as a thin line, and the actor's
entropy in imagination in the bottom panel. ``--mark`` draws a vertical line at an env step (the
shipped save).
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_dreamer_audit.errors import ConfigError

COLUMNS = ("env_steps", "return_mean", "entropy", "eval_sampled", "eval_greedy")


@dataclass(frozen=True)
class Curve:
    """One run's learning curve: each column's ``(env_steps, value)`` points where logged."""

    label: str
    points: dict[str, tuple[tuple[int, float], ...]]


def _value(text: str) -> float:
    return float(text) if text.strip() else math.nan


def read_curve(path: Path, label: str) -> Curve:
    """The columns of :data:`COLUMNS` from a trainer's curve CSV (empty cells are skipped)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = [name for name in COLUMNS if rows and name not in rows[0]]
    if not rows or missing:
        raise ConfigError(
            f"{path} is not a learning curve of research/train_reference_agent.py: "
            + (f"it lacks the columns {missing}" if rows else "it has no rows")
        )
    points: dict[str, tuple[tuple[int, float], ...]] = {}
    for name in COLUMNS[1:]:
        pairs = ((int(row["env_steps"]), _value(row[name])) for row in rows)
        points[name] = tuple((step, value) for step, value in pairs if not math.isnan(value))
    return Curve(label, points)


def _xy(curve: Curve, name: str) -> tuple[list[int], list[float]]:
    return [step for step, _ in curve.points[name]], [value for _, value in curve.points[name]]


def plot(curves: Sequence[Curve], out: Path, marks: Sequence[int] = ()) -> None:
    """Write the two-panel figure of ``curves`` to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 6.5), sharex=True, height_ratios=(2, 1), layout="constrained"
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, curve in enumerate(curves):
        colour = colours[index % len(colours)]
        for name, marker, style in (("eval_sampled", "o", "-"), ("eval_greedy", "^", "--")):
            what = name.removeprefix("eval_")
            top.plot(
                *_xy(curve, name),
                marker=marker,
                ms=4,
                lw=1.2,
                ls=style,
                color=colour,
                label=f"{curve.label}: {what}",
            )
        top.plot(*_xy(curve, "return_mean"), lw=0.6, alpha=0.5, color=colour)
        bottom.plot(*_xy(curve, "entropy"), lw=1.0, color=colour, label=curve.label)
    for step in marks:
        for axis in (top, bottom):
            axis.axvline(step, color="black", lw=0.8, ls=":")
    top.set_ylabel("return per episode")
    top.set_title(
        "selection evaluation (16 full episodes, markers) and training episodes (thin line)",
        fontsize=10,
    )
    top.legend(fontsize=8, loc="lower right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("actor entropy (nats)")
    bottom.set_xlabel("env steps")
    bottom.grid(alpha=0.3)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("curves", nargs="+", type=Path, help="curve CSVs, one per run")
    parser.add_argument("--label", action="append", default=[], help="one label per CSV")
    parser.add_argument("--mark", action="append", type=int, default=[], help="env step to mark")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    labels = args.label or [path.stem for path in args.curves]
    if len(labels) != len(args.curves):
        raise ConfigError(f"{len(args.curves)} curves need as many --label, got {len(labels)}")
    plot(
        [read_curve(p, label) for p, label in zip(args.curves, labels, strict=True)],
        args.out,
        args.mark,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
