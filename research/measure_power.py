"""False positives and power of the claims on a checkpoint's own rollouts (issue 27).

Two questions, each on the explanation the plugin builds (``AuditCache``), at several episode
counts:

- **False positives with the wrong episodes.** The facts of episode ``b + j`` beside the
  latents of episode ``b`` (every rotation ``j``): nothing real links them, so every claim made
  is a false positive. Counted for the circular-shift null alone (what the package claimed
  before) and for the claim (both nulls), with Clopper-Pearson 95% intervals.
- **Power.** Planted events on the real latents: an event with probability ``s`` at the score's
  top picks (or at a stable factor's top 5% of activations) and at the base rate ``q``
  elsewhere, drawn per mask; the share of masks claimed at the level. Factors are tested as
  the package tests them (the rank-biserial correlation of the whole activation with the
  event) and, for comparison, as they were before: the precision of the factor's top 20
  picks, against the same two nulls.

    OMP_NUM_THREADS=1 python research/measure_power.py examples/checkpoints/freeway_pomdp.pth \\
        --seed 777000 --episodes 16 32 64 --masks 100 --out /tmp/power.md
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.plugin.audit import AuditCache
from pytest_dreamer_audit.results.claims import claims_table, score_event_test
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.nulls import max_adjusted, paired_means
from pytest_dreamer_audit.results.picks import TIE_TOLERANCE, top_picks
from pytest_dreamer_audit.results.semantics import factor_event_test, factor_status
from pytest_dreamer_audit.results.two_nulls import Nulls
from pytest_dreamer_audit.settings import AuditSettings

STRENGTHS = (0.2, 0.3, 0.5, 0.7)
BASE_RATE = 0.15


def rate(count: int, trials: int) -> str:
    """``count/trials = share [95% Clopper-Pearson interval]``."""
    if trials == 0:
        return "-"
    ci = binomtest(count, trials).proportion_ci(0.95)
    return f"{count}/{trials} = {count / trials:.2f} [{ci.low:.2f}, {ci.high:.2f}]"


def wrong_episode_claims(e: Explanation, level: float) -> dict[str, tuple[int, int]]:
    """Per kind of claim, (made under the shifts alone, made under both nulls), summed over
    the rotations of the facts by 1 .. B - 1 episodes; and the number of rotations."""
    counts = {"score verdict": [0, 0], "factor claim": [0, 0], "chicken_row": [0, 0]}
    rotations = e.episodes - 1
    for j in range(1, e.episodes):
        table = claims_table(dataclasses.replace(e, facts=np.roll(e.facts, j, axis=1)))
        shift_score = any(min(s.shift_p_above, s.shift_p_below) <= level for s in table.scores)
        counts["score verdict"][0] += shift_score
        counts["score verdict"][1] += any(s.verdict() != "chance" for s in table.scores)
        shift_fact = [any(p <= level for p in row.shift_p_values if p == p) for row in table.facts]
        counts["factor claim"][0] += any(shift_fact)
        counts["factor claim"][1] += any(row.claim >= 0 for row in table.facts)
        for row, shifted in zip(table.facts, shift_fact, strict=True):
            if row.name == "chicken_row":
                counts["chicken_row"][0] += shifted
                counts["chicken_row"][1] += row.claim >= 0
    return {name: (a, b) for name, (a, b) in counts.items()} | {"rotations": (rotations, 0)}


def score_power(e: Explanation, strength: float, masks: int, seed: int) -> tuple[int, int]:
    """Masks claimed (shifts alone; every null: the shifts, the swap and, where those two leave
    a claim possible, shuffles within the other recorded fact, ``results/strata.py``) with the
    event planted at the score's picks."""
    rng = np.random.default_rng(seed)
    picked = np.zeros(e.valid.shape, dtype=bool)
    for b, steps in enumerate(e.top_observations):
        picked[steps[steps >= 0], b] = True
    shift = both = 0
    for m in range(masks):
        chance = np.where(picked, strength, BASE_RATE)
        event = rng.random(e.valid.shape) < chance
        test = score_event_test(e, event, ClaimConfig(seed=m), one_sided=True)
        shift += test.shift_p_above <= 0.05
        both += test.p_above <= 0.05
    return shift, both


def pick_p_value(e: Explanation, event: np.ndarray, factor: int, seed: int) -> float:
    """The rule before the rank test: the precision of each factor's top 20 picks against
    both nulls, maxT over the claimable factors; the planted factor's p-value."""
    claims = ClaimConfig(seed=seed)
    nulls = Nulls.draw(e.valid, claims)
    activations = e.factor_activations[e.valid]
    order, _ = top_picks(activations, nulls.episode, 20)
    hits = event[e.valid]
    claimable = np.array([s.claimable for s in factor_status(e, claims)])
    precision = hits[order].mean(axis=0)
    shifted = hits.astype(np.float64)[nulls.shifts.source(order)].mean(axis=1)
    swapped = paired_means(hits, nulls.swaps.source(order), axis=1)
    p_shift, _ = max_adjusted(precision, shifted, claimable)
    p_swap, _ = max_adjusted(precision, swapped, claimable, nulls.swaps.exact)
    return float(max(p_shift[factor], p_swap[factor]))


def factor_power(
    e: Explanation, strength: float, masks: int, seed: int
) -> tuple[int, int, int, float]:
    """Masks whose planted factor is claimed (both nulls) with the event at that factor's top
    5% of activations (and every observation tied with them): by the package's rank test, and
    by the top-20 precision rule before it. Returns ``(factor, claimed by the rank test,
    claimed by the top-20 rule, share of observations planted)``."""
    statuses = factor_status(e)
    claimable = [s for s in statuses if s.claimable]
    if not claimable:
        return -1, 0, 0, 0.0
    factor = max(claimable, key=lambda s: s.stability).factor
    values = e.factor_activations[..., factor]
    # The top 5%, with every observation tied with its edge (``results/picks.py``): the
    # posteriors are nearly one-hot, so activations saturate and the picks come from the tie.
    tolerance = TIE_TOLERANCE * float(values[e.valid].max())
    top = e.valid & (values >= np.quantile(values[e.valid], 0.95) - tolerance)
    rng = np.random.default_rng(seed)
    found = before = 0
    for m in range(masks):
        event = rng.random(e.valid.shape) < np.where(top, strength, BASE_RATE)
        test = factor_event_test(e, event, ClaimConfig(seed=m))
        found += bool(test.controlled_p_values[factor] <= 0.05)  # every null, as the assertion
        before += pick_p_value(e, event, factor, m) <= 0.05
    return factor, found, before, float(top.sum() / e.valid.sum())


def report(checkpoint: str, seed: int, episodes: Sequence[int], masks: int, root: Path) -> str:
    cache = AuditCache(root)
    lines = [
        f"# False positives and power of the claims on `{checkpoint}`",
        "",
        f"- rollout seed {seed} (seeds {seed}..{seed + max(episodes) - 1} at most), 50 steps, "
        f"the plugin's defaults otherwise; level 0.05; machine `{platform.machine()}`",
        f"- planted events: probability s at the picks, {BASE_RATE} elsewhere; {masks} masks "
        "per cell",
    ]
    for count in episodes:
        settings = AuditSettings(checkpoint=checkpoint, seed=seed, episodes=count)
        e = cache.explanation(settings).explanation
        wrong = wrong_episode_claims(e, 0.05)
        rotations = wrong.pop("rotations")[0]
        lines += ["", f"## {count} episodes", "", "Wrong-episode pairings, claims made:", ""]
        lines += ["| claim | circular shifts alone | every null |", "|---|---|---|"]
        for name, (shift, both) in wrong.items():
            lines.append(f"| {name} | {rate(shift, rotations)} | {rate(both, rotations)} |")
        lines += ["", "Planted effects, masks claimed:", ""]
        lines += [
            "| planted at | s | shifts alone | every null |",
            "|---|---:|---|---|",
        ]
        for strength in STRENGTHS:
            shift, both = score_power(e, strength, masks, seed=int(strength * 100))
            lines.append(
                f"| the score's top-{e.top_observations.shape[1]} | {strength} | "
                f"{rate(shift, masks)} | {rate(both, masks)} |"
            )
        for strength in STRENGTHS:
            factor, found, before, share = factor_power(e, strength, masks, int(strength * 1000))
            lines.append(
                f"| factor {factor}'s top {share:.1%} | {strength} | - | rank test: "
                f"{rate(found, masks)}; top-20 picks: {rate(before, masks)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--seed", type=int, default=777000)
    parser.add_argument("--episodes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--masks", type=int, default=100)
    parser.add_argument("--out", type=Path, help="write the markdown here (default: stdout)")
    args = parser.parse_args(argv)
    if any(count < 2 for count in args.episodes) or args.masks < 1:
        raise ConfigError("--episodes must all be at least 2 and --masks at least 1")
    with tempfile.TemporaryDirectory(prefix="power-") as scratch:
        text = report(args.checkpoint, args.seed, args.episodes, args.masks, Path(scratch))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
