"""An audit of the bundled Freeway POMDP reference agent, using every kind of assertion.

Run it (this writes the HTML report with the explanation grids):

    pytest examples/ --dreamer-checkpoint examples/checkpoints/freeway_pomdp.pth \\
        --html=audit.html --self-contained-html

Settings: the plugin's defaults, 16 episodes x 50 steps from seed 0, rank 10, pooled layout,
the surprise score. Every threshold below is justified by the number measured on
``examples/checkpoints/freeway_pomdp.pth`` (env step 1,716,576; ``research/pin_suite.py``) with
these settings on CPU, by its nulls (circular time shifts of the event, and the event of other
episodes at the same steps: ``results/two_nulls.py``) and, where it matters, by what random
weights give (``research/claims_table.md``, 64 episodes from seed 300000) and by the spread
over rollout seeds 0, 1000, 424242 and 535353 at 16 and 32 episodes (the last two used for
nothing else). Every claim must also beat both nulls at level 0.05 (the assertions' default),
whatever the threshold.

What the audit finds, in short: the agent waits (noop 27%) as well as moving up (69%); its
posteriors are nearly one-hot, so a rank-10 NMF leaves 55% of the norm unexplained; the factors
are stable in the mean but a few of ten are fit-dependent; deleting the top-ranked posteriors
moves the policy 2.6-2.9x as much as deleting random ones (the always-UP agent shipped before
it: 0.91x); one factor follows the chicken's row, about 0.1 in Spearman beyond what the step
gives. What it does not find, now that every claim must also beat the facts of other
episodes at the same steps: the surprising frames being followed by UP, and their avoiding
cars, were both the start of every crossing ("time"); its surprising frames show no
collisions (the always-UP agent's did, 12.5% against a base rate of 5.8%). No score pick or
factor localises a collision, a car that UP would hit, or the move timer beyond both nulls at
every rollout seed; those are not claimed.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_dreamer_audit import BaselineTolerances, DreamerAudit, Explanation, score_event_test

# --- behaviour -----------------------------------------------------------------------------------


def test_agent_crosses_the_road(dreamer_audit: DreamerAudit) -> None:
    # Measured: mean return 0.50 per 50-step rollout (0.50 at seed 1000; 0.41 and 0.47 over 32
    # episodes); a crossing takes at least 27 steps. Uniform random play scores about 0.01 in 50
    # steps. Over full episodes it is 39.4 sampled against 29.7 for the best blind policy
    # (examples/checkpoints/README.md).
    dreamer_audit.assert_mean_return(min_return=0.25)


def test_agent_waits_as_well_as_moving_up(dreamer_audit: DreamerAudit) -> None:
    # Measured: up 68.9%, noop 26.9%, down 4.2% of valid steps (up 68.1-69.3%, noop 26.7-27.6%,
    # down 4.0-4.4% at the other seeds and sizes). The always-UP agent shipped before pressed
    # noop 1.6% and fails the noop bound; a blind UP(p = 0.8) coin would pass it, which is why
    # the danger reaction is measured on full episodes by research/evaluate_agent.py, not here.
    dreamer_audit.assert_action_fractions(
        min_fractions={"up": 0.6, "noop": 0.15}, max_fractions={"down": 0.1}
    )


# --- how far to trust the explanation ------------------------------------------------------------


def test_nmf_reconstructs_the_posteriors(dreamer_audit: DreamerAudit) -> None:
    # Measured: relative error 0.551, explained variance 0.673 (0.549-0.556 and 0.667-0.675 over
    # seeds and sizes). The posteriors are nearly one-hot over 20 classes (entropy 0.17 nats), so
    # 10 pooled prototypes cannot reproduce them exactly; a jump in the error means the latent
    # code changed character. Random weights give near-uniform rows an NMF fits to 0.02.
    dreamer_audit.assert_reconstruction(max_relative_error=0.62, min_explained_variance=0.6)


def test_factors_are_stable_across_nmf_seeds(dreamer_audit: DreamerAudit) -> None:
    # Measured: mean matched prototype cosine 0.877 over two random-init refits with the HALS
    # solver (0.902 at seed 1000, 0.880-0.945 over 32 episodes). The minimum matched cosine is
    # 0.00-0.01: a few factors of ten are fit-dependent, so the claim is made for the mean only,
    # and those factors are marked unstable and make no claims. (The top-k Jaccard is not
    # reported for the surprise score: its picks do not depend on the NMF.)
    dreamer_audit.assert_factors_stable(min_mean_cosine=0.8)


def test_explanation_differs_from_randomized_weights(dreamer_audit: DreamerAudit) -> None:
    # Measured: Spearman -0.230 (-0.247 at seed 1000, -0.25/-0.26 over 32 episodes) between the
    # trained agent's surprise per observation and that of the same network with every
    # posterior-making layer permuted and its logits rescaled to the trained spread, fed the same
    # observations and actions (Adebayo et al. 2018): its posteriors have entropy 0.255 nats
    # against the trained 0.17, not the uniform 3.00 that re-initialised weights give. A planted
    # model whose posterior is a fixed function of the screen scores 1.000 and fails this.
    dreamer_audit.assert_differs_from_random_weights(max_spearman=0.25)


def test_explanation_is_not_just_confidence(dreamer_audit: DreamerAudit) -> None:
    # Measured: Spearman -0.217 between the surprise of each categorical and its confidence
    # ||p||_2 (-0.180 to -0.209 at the other seeds and sizes); the activation score reached
    # 0.35-0.37 on the posteriors of the agent before this one and the notebook's reconstruction
    # score 0.99 on softmax rows. The bound fails a score that mostly restates confidence.
    dreamer_audit.assert_not_just_confidence(max_spearman=0.5)


def test_every_default_trust_check_passes(dreamer_audit: DreamerAudit) -> None:
    # The eight numbered checks of results/trustworthy.py at their documented thresholds. On this
    # agent at seeds 0, 1000, 7100, 7200, 7300 and 7400 all eight pass; every planted model of
    # pytest_dreamer_audit.planted fails at least one (the matrix in README.md, from
    # research/planted_matrix.py): the permuted actor the deletion control (p 0.35-0.70 against
    # <= 0.05), the posterior that ignores its memory check 4 (1.000 against <= 0.9), the
    # screen-reading posterior the sanity check (1.000 against <= 0.3). Check 6 is tight: the
    # agent passes by beating all 19 permuted actors (ratio 3.7-6.1 against at most 3.3-3.5).
    dreamer_audit.assert_trustworthy()


def test_deletion_beats_chance(dreamer_audit: DreamerAudit) -> None:
    # Measured: replacing a top-5 posterior by its prior changes the action distribution 2.87x
    # as much as replacing a random step's (2.62x at seed 1000, 2.76x and 2.70x over 32
    # episodes); random picks are 1.0x by construction. The explanation points at states the
    # policy depends on. The always-UP agent shipped before reached 0.91x and fails this.
    dreamer_audit.assert_deletion_beats_random(min_ratio=1.5)


# --- what the explanation points at (each claim against its null) --------------------------------


def executed_up(explanation: Explanation) -> np.ndarray:
    """``[L, B]``: the action executed after observation t was UP (sticky repeats included), the
    claims table's ``executed_action=up``."""
    return explanation.fact("executed_action") == explanation.action_names.index("up")


def test_surprising_frames_followed_by_up_is_the_steps_not_the_episodes(
    dreamer_audit: DreamerAudit,
) -> None:
    # Measured: after 85.0% of the top-5 frames by KL(posterior || prior) the agent presses UP
    # (executed_action=up, a_t), against a base rate of 69.3%: beyond circular shifts (p =
    # 0.002; 0.002-0.034 at seeds 1000, 424242, 535353 and at 32 episodes), which is what the
    # suite claimed before. The same steps of OTHER episodes are followed by UP as often (null
    # 5-95% 75.0-87.5%, effect over them +3.4% [-2.9%, +9.6%], p = 0.23; p = 0.07-0.79 at the
    # other seeds and sizes, "time" in 9 of 12 runs and plain chance in the others, including
    # rollout seeds 861000 and 973000 that only the review used): every crossing starts the
    # same way, and the surprise peaks there. So it is not claimed. A world model whose
    # surprise marks the agent's own decision to move, episode by episode, makes this fail.
    with pytest.raises(AssertionError, match="not beyond chance"):
        dreamer_audit.assert_top_observations_coincide(executed_up, min_precision=0.72)


def test_surprise_does_not_mark_collisions_any_more(dreamer_audit: DreamerAudit) -> None:
    # Measured: 2.5% of the top-5 frames show a collision (collision_visible), against a base
    # rate of 3.7% and a null 95% quantile of 7.5% (p = 0.82 for "above"); 2.5% vs 2.4% at seed
    # 1000; 1.9% and 3.1% over 32 episodes, all at chance. The always-UP agent shipped before
    # passed this claim (12.5% vs 5.8%, p = 0.013); this one collides less and is not surprised
    # when it does. Pinned as a finding: a world model surprised by collisions again fails this.
    with pytest.raises(AssertionError, match="not beyond chance"):
        dreamer_audit.assert_top_observations_coincide("collision_visible", min_precision=0.0)


def test_surprise_is_not_drawn_to_cars_next_to_the_chicken(dreamer_audit: DreamerAudit) -> None:
    # Measured: 8.7% of the top-5 frames have a car next to the chicken, against a base rate of
    # 15.8%; the same steps of other episodes have one in 3.7-11.3% (5-95%), so here the frames
    # are at chance against them (p = 1.0 both ways; 5.0-10.0% at seeds 1000, 424242, 535353
    # and at 32 episodes, at chance). At rollout seeds 861000 and 973000 they are BELOW both
    # nulls in 3 of 4 runs (1.3-2.5%, p_below 0.002-0.022): "below" changes with the seed, so it
    # is not claimed. "Not above" holds in all 12 runs: an agent whose model is startled by
    # nearby cars makes this fail.
    test = score_event_test(dreamer_audit.explanation, "car_adjacent")
    assert test.p_above > 0.05, test


def test_a_factor_tracks_the_chicken_row(dreamer_audit: DreamerAudit) -> None:
    # Measured: the best claimable factor's activation has Spearman -0.372 with the chicken's
    # row, against best-of-factors null 95% quantiles of |rho| 0.187 (circular shifts) and
    # 0.358 (the rows of other episodes at the same steps: every crossing starts at the bottom,
    # so the step alone carries much of the row), p = 0.026; its effect over other episodes is
    # -0.086 [-0.178, +0.015]. At seeds 1000, 424242, 535353 and at 32 episodes: -0.372 to
    # -0.425, p = 0.001-0.019, effects -0.08 to -0.13 with intervals that exclude 0; at seed
    # 1000 with 32 episodes that factor is fit-dependent (no claim), and the best claimable
    # one, -0.111, fails. At rollout seeds 861000 and 973000 (16 and 32 episodes, used only by
    # the review) it fails 4 of 4: twice "time" (-0.34, -0.30 against other episodes' q95
    # 0.34-0.35), twice the best claimable factor is weaker (-0.275, -0.166). So this is a
    # regression pin at the suite's seed, not a property of the agent: over 12 runs a factor
    # follows the row beyond what the step gives in 7, by about 0.1 in Spearman. Permuted
    # random weights (5 seeds, 64 episodes, research/claims_table.md) reach |rho| 0.17-0.24,
    # claimed by none; the bound 0.3 sits above them.
    dreamer_audit.assert_some_factor_tracks("chicken_row", min_abs_spearman=0.3)


# --- regression ----------------------------------------------------------------------------------


def test_explanation_matches_the_stored_baseline(dreamer_audit: DreamerAudit) -> None:
    # examples/dreamer_baselines/ holds the snapshot of this checkpoint's explanation; rerun with
    # --dreamer-update-baselines after retraining the checkpoint on purpose.
    dreamer_audit.check_baseline(
        tolerances=BaselineTolerances(min_prototype_cosine=0.9, return_abs=0.5)
    )
