"""Do the default trust checks fail the models they are named after? The planted-model matrix.

    python research/planted_matrix.py examples/checkpoints/freeway_pomdp.pth --seed 7100

Every planted model of ``pytest_dreamer_audit.planted`` (a weight edit of the checkpoint in the
reference format, or the screen-reading test double) is audited like the trained agent: its own
rollouts (``episodes`` x ``steps``, sampled, seeds ``seed .. seed + episodes - 1``), the default
explanation, and every default trust check (``results/trustworthy.py``). The table has one row
per check (its metric and threshold) and one column per model: the value and the verdict, and
in the last row the checks that failed against those that must fail (``planted.MUST_FAIL``).

The actor that reads only the least surprising categoricals keeps the 4 (of 20) whose mean
surprise on the trained agent's own rollouts (the same seeds) is lowest; the reward head reads
the first of them. ``--json`` also writes every value.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.analysis.scores import surprise
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.planted import MUST_FAIL, least_surprising, planted_models
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.results.trustworthy import TRUST_CHECKS, TrustVerdict, trust_verdicts
from pytest_dreamer_audit.rollout.rollouts import run_rollouts

TRAINED = "trained"


def run_matrix(
    agent: DreamerAgent,
    *,
    episodes: int,
    steps: int,
    seed: int,
    config: ExplainConfig | None = None,
    keep: int = 4,
) -> dict[str, tuple[TrustVerdict, ...]]:
    """Model name (``"trained"`` first, then :data:`~pytest_dreamer_audit.planted.MUST_FAIL`'s)
    -> the verdict of every default trust check on its own audit."""
    trajectory = run_rollouts(agent, episodes=episodes, steps=steps, seed=seed)
    kl = surprise(trajectory.posterior_logits, trajectory.prior_logits)  # [L, B, C]
    least = least_surprising(kl, trajectory.valid.bool(), keep)
    models = {TRAINED: agent, **planted_models(agent, least=least, seed=seed)}
    results = {}
    for name, model in models.items():
        # Each model plays its own episodes (same seeds): a planted actor acts differently.
        rollouts = (
            trajectory
            if name == TRAINED
            else run_rollouts(model, episodes=episodes, steps=steps, seed=seed)
        )
        results[name] = trust_verdicts(explain(rollouts, config, agent=model).metrics)
    return results


def _cell(verdict: TrustVerdict) -> str:
    shown = "n/a" if math.isnan(verdict.value) else f"{verdict.value:.3f}"
    return f"{shown} pass" if verdict.passed else f"**{shown} FAIL**"


def failures(verdicts: Sequence[TrustVerdict]) -> tuple[int, ...]:
    """The numbers of the checks that failed."""
    return tuple(v.check.number for v in verdicts if not v.passed)


def table(results: dict[str, tuple[TrustVerdict, ...]]) -> str:
    """The markdown matrix: a row per check, a column per model, and the failed checks."""
    names = list(results)
    lines = [
        "| check | metric | threshold | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for i, check in enumerate(TRUST_CHECKS):
        relation = "<=" if check.direction == "max" else ">="
        threshold = f"{relation} {results[names[0]][i].threshold:g}"
        cells = " | ".join(_cell(results[name][i]) for name in names)
        lines.append(f"| {check.number}. {check.name} | {check.metric} | {threshold} | {cells} |")
    summary = []
    for name in names:
        failed = ", ".join(map(str, failures(results[name]))) or "none"
        must = MUST_FAIL.get(name)
        summary.append(failed if must is None else f"{failed} (must: {_listed(must)})")
    lines.append("| failed checks | | | " + " | ".join(summary) + " |")
    return "\n".join(lines)


def _listed(numbers: tuple[int, ...]) -> str:
    return ", ".join(map(str, numbers)) or "none"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--trust-episodes",
        type=int,
        default=ExplainConfig.trust_episodes,
        help="episodes the replaying trust checks run on (0: every episode)",
    )
    parser.add_argument("--json", type=Path, help="also write every verdict here")
    args = parser.parse_args(argv)
    config = ExplainConfig(trust_episodes=args.trust_episodes)
    torch.set_num_threads(args.threads)
    agent = load_checkpoint(args.checkpoint)
    start = time.perf_counter()
    results = run_matrix(
        agent, episodes=args.episodes, steps=args.steps, seed=args.seed, config=config
    )
    sample = f"{args.trust_episodes} episodes" if args.trust_episodes else "every episode"
    print(
        f"{args.checkpoint.name}, {args.episodes} x {args.steps}, seed {args.seed}, "
        f"checks 3, 4, 6, 7 on {sample} "
        f"({time.perf_counter() - start:.0f} s)\n"
    )
    print(table(results))
    if args.json:
        data = {name: [v.to_json() for v in verdicts] for name, verdicts in results.items()}
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
