"""The object behind the ``dreamer_audit`` fixture: an explanation, its evidence, and the
saliency assertions and baseline check bound to both (with the log of the checks a test made).

Imported lazily by the ``dreamer_audit`` fixture (``plugin/fixtures.py``): it pulls in the audit
machinery.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..files import distinct_name
from ..report.artifacts import artifact_directory
from ..report.bundle import caption
from ..report.numbers import format_number
from ..report.records import AuditRecord, Check
from ..results import assertions
from ..results.baseline import BaselineTolerances, check_baseline
from ..results.explanation import Explanation
from ..results.imagination import HeadPrediction, PredictionError
from ..results.semantics import FactValues
from ..results.trustworthy import TrustThresholds, TrustVerdict
from .audit import AuditResult

__all__ = ["DreamerAudit", "make_audit"]


Method = TypeVar("Method", bound=Callable[..., Any])


BASELINE_HELD = "matches the stored baseline within its tolerances"
"""What the checks table says for ``check_baseline``, the one check that measures no number."""


def outcome_text(value: object) -> str:
    """What an assertion returned, as the report's checks table shows it: numbers with
    :func:`~pytest_dreamer_audit.report.numbers.format_number` (NaN: ``n/a``), a NamedTuple
    (``Reconstruction``, ``Stability``, ``FactorMatch``, a prediction row) field by field, trust
    verdicts one by one; a prediction row as it describes itself."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (float, int)):
        return format_number(value)
    if isinstance(value, tuple) and value and all(isinstance(v, TrustVerdict) for v in value):
        return "; ".join(verdict.describe() for verdict in value)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return ", ".join(f"{k} {outcome_text(v)}" for k, v in value._asdict().items())
    if isinstance(value, dict):
        return ", ".join(f"{k} {outcome_text(v)}" for k, v in value.items())
    return BASELINE_HELD if value is None else str(value)


def _logged(method: Method) -> Method:
    """Record each call of an assertion method, with its outcome, in the audit's check log
    (the report's table of this test's checks)."""

    @functools.wraps(method)
    def logged(self: DreamerAudit, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        call = f"{method.__name__}({', '.join(shown)})"
        try:
            value = method(self, *args, **kwargs)
        except AssertionError as error:
            message = str(error).removeprefix("dreamer-audit: ").split("\nEvidence:")[0]
            self.checks.append(Check(call, False, message))
            raise
        self.checks.append(Check(call, True, outcome_text(value)))
        return value

    return logged  # type: ignore[return-value]


@dataclass(frozen=True)
class DreamerAudit:
    """One test's audit: use its assertion methods, or read ``explanation`` directly.

    Attributes:
        explanation: the :class:`~pytest_dreamer_audit.results.explanation.Explanation`.
        result: the cache entry behind it (settings, key, images).
        evidence: this test's artifacts directory (the PNGs and ``summary.json``), named in
            every failure message.
        baseline_path: where :meth:`check_baseline` keeps this test's baseline.
        update_baselines: whether ``--dreamer-update-baselines`` was given.
        record: what the report shows of this audit.
        checks: the assertions this test made and their outcomes, in order (shared with the
            report hooks through the test item, so a failing check is listed too).
    """

    explanation: Explanation
    result: AuditResult
    evidence: Path
    baseline_path: Path
    update_baselines: bool
    record: AuditRecord
    checks: list[Check] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"DreamerAudit({self.explanation!r}, evidence={str(self.evidence)!r})"

    def _level(self, level: float | None) -> float:
        """The assertion's level: as given, else the audit's ``--dreamer-significance``."""
        return self.result.settings.significance if level is None else level

    @_logged
    def assert_top_observations_coincide(
        self,
        event: assertions.Event,
        *,
        min_precision: float,
        k: int | None = None,
        level: float | None = None,
    ) -> float:
        """Assert that the rollouts' top-k observations hit ``event`` at least
        ``min_precision`` of the time and beyond chance at ``level`` (default: the audit's
        ``--dreamer-significance``); returns the precision."""
        __tracebackhide__ = True
        return assertions.assert_top_observations_coincide(
            self.explanation,
            event,
            min_precision=min_precision,
            k=k,
            level=self._level(level),
            evidence=self.evidence,
        )

    @_logged
    def assert_some_factor_coincides(
        self,
        event: assertions.Event,
        *,
        min_precision: float,
        k: int | None = None,
        level: float | None = None,
    ) -> assertions.FactorMatch:
        """Assert that some claimable factor's k most exciting observations hit ``event`` at
        least ``min_precision`` of the time and beyond the best-of-factors null at ``level``;
        returns that factor and its precision."""
        __tracebackhide__ = True
        return assertions.assert_some_factor_coincides(
            self.explanation,
            event,
            min_precision=min_precision,
            k=k,
            level=self._level(level),
            evidence=self.evidence,
        )

    @_logged
    def assert_some_factor_tracks(
        self, fact: FactValues, *, min_abs_spearman: float, level: float | None = None
    ) -> assertions.FactorMatch:
        """Assert that some claimable factor's activation has ``|Spearman| >= min_abs_spearman``
        with a graded fact, beyond the best-of-factors null at ``level``; returns that factor
        and its correlation."""
        __tracebackhide__ = True
        return assertions.assert_some_factor_tracks(
            self.explanation,
            fact,
            min_abs_spearman=min_abs_spearman,
            level=self._level(level),
            evidence=self.evidence,
        )

    @_logged
    def assert_latent_knows(self, fact: str, *, margin: float) -> float:
        """Assert that the trained latent predicts ``fact`` better than every control by
        ``margin`` (needs ``--dreamer-probes true``); returns the difference."""
        __tracebackhide__ = True
        return assertions.assert_latent_knows(
            self.explanation, fact, margin=margin, evidence=self.evidence
        )

    @_logged
    def assert_deletion_curve_beats_random(self, head: str, *, min_area: float) -> float:
        """Assert that deleting the score's top-ranked entries moves ``head`` more than random
        orders by ``min_area`` (needs ``--dreamer-curves true``); returns the area."""
        __tracebackhide__ = True
        return assertions.assert_deletion_curve_beats_random(
            self.explanation, head, min_area=min_area, evidence=self.evidence
        )

    @_logged
    def assert_imagination_beats_persistence(
        self, *, horizon: int, channel: int | None = None, level: float | None = None
    ) -> PredictionError:
        """Assert that the world model's ``horizon``-step open-loop prediction beats persistence
        and the randomized dynamics (needs ``--dreamer-imagination``); returns the row.
        ``level`` defaults to the audit's ``--dreamer-significance``."""
        __tracebackhide__ = True
        return assertions.assert_imagination_beats_persistence(
            self.explanation,
            horizon=horizon,
            channel=channel,
            level=self._level(level),
            evidence=self.evidence,
        )

    @_logged
    def assert_reward_prediction(self, *, horizon: int, min_auc: float) -> HeadPrediction:
        """Assert that the reward head, ``horizon`` steps into imagination, reaches ROC AUC
        ``min_auc`` and beats its nulls (needs ``--dreamer-imagination``); returns the row."""
        __tracebackhide__ = True
        return assertions.assert_reward_prediction(
            self.explanation, horizon=horizon, min_auc=min_auc, evidence=self.evidence
        )

    @_logged
    def assert_factors_stable(
        self,
        *,
        min_cosine: float | None = None,
        min_mean_cosine: float | None = None,
        min_topk_jaccard: float | None = None,
    ) -> assertions.Stability:
        """Assert the stability metrics across NMF refits; returns them."""
        __tracebackhide__ = True
        return assertions.assert_factors_stable(
            self.explanation,
            min_cosine=min_cosine,
            min_mean_cosine=min_mean_cosine,
            min_topk_jaccard=min_topk_jaccard,
            evidence=self.evidence,
        )

    @_logged
    def assert_differs_from_random_weights(self, *, max_spearman: float) -> float:
        """Assert the sanity check: the scores' Spearman with randomized weights' scores is
        at most ``max_spearman``; returns it."""
        __tracebackhide__ = True
        return assertions.assert_differs_from_random_weights(
            self.explanation, max_spearman=max_spearman, evidence=self.evidence
        )

    @_logged
    def assert_not_just_confidence(self, *, max_spearman: float) -> float:
        """Assert that the scores' Spearman with the categoricals' confidence ``||p||_2`` is
        at most ``max_spearman``; returns it."""
        __tracebackhide__ = True
        return assertions.assert_not_just_confidence(
            self.explanation, max_spearman=max_spearman, evidence=self.evidence
        )

    @_logged
    def assert_reconstruction(
        self,
        *,
        max_relative_error: float | None = None,
        min_explained_variance: float | None = None,
    ) -> assertions.Reconstruction:
        """Assert the NMF fit; returns the relative error and the explained variance."""
        __tracebackhide__ = True
        return assertions.assert_reconstruction(
            self.explanation,
            max_relative_error=max_relative_error,
            min_explained_variance=min_explained_variance,
            evidence=self.evidence,
        )

    @_logged
    def assert_deletion_beats_random(self, *, min_ratio: float = 1.0) -> float:
        """Assert that deleting the top-k posteriors moves the policy at least ``min_ratio``
        times as much as deleting random ones; returns the ratio."""
        __tracebackhide__ = True
        return assertions.assert_deletion_beats_random(
            self.explanation, min_ratio=min_ratio, evidence=self.evidence
        )

    @_logged
    def assert_trustworthy(
        self, *, thresholds: TrustThresholds | None = None
    ) -> tuple[TrustVerdict, ...]:
        """Run every default trust check (reconstruction, stability, the posterior sanity
        check, the posterior reads its memory, not just confidence, deletion against permuted
        actors, the bottom-ranked deletion, the reward head) with the documented thresholds
        (``results/trustworthy.TrustThresholds``; pass your own to override some); fails naming
        every failed check with its number. Returns every check's verdict.

        Example:
            >>> dreamer_audit.assert_trustworthy()  # doctest: +SKIP
        """
        __tracebackhide__ = True
        return assertions.assert_trustworthy(
            self.explanation, thresholds=thresholds, evidence=self.evidence
        )

    @_logged
    def assert_mean_return(self, *, min_return: float) -> float:
        """Assert that the rollouts' mean return is at least ``min_return``; returns it."""
        __tracebackhide__ = True
        return assertions.assert_mean_return(
            self.explanation, min_return=min_return, evidence=self.evidence
        )

    @_logged
    def assert_action_fractions(
        self,
        *,
        min_fractions: Mapping[str, float] | None = None,
        max_fractions: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Assert bounds on the fraction of executed actions by name; returns every action's
        fraction."""
        __tracebackhide__ = True
        return assertions.assert_action_fractions(
            self.explanation,
            min_fractions=min_fractions,
            max_fractions=max_fractions,
            evidence=self.evidence,
        )

    @_logged
    def check_baseline(self, *, tolerances: BaselineTolerances | None = None) -> None:
        """Compare with this test's stored baseline (written, and failing, when missing);
        ``tolerances`` defaults to :class:`BaselineTolerances`'s."""
        __tracebackhide__ = True
        check_baseline(
            self.explanation,
            self.baseline_path,
            update=self.update_baselines,
            tolerances=tolerances or BaselineTolerances(),
            evidence=self.evidence,
        )


def _baseline_path(request: pytest.FixtureRequest, baseline_dir: str, label: str) -> Path:
    """``<dir>/<module>/<test name>-<hash>.json``: the hash covers the whole node id (the test
    file's path from the rootdir, the test's full name with its parameters) and the checkpoint,
    so that no two tests share a baseline, even same-named modules in same-named folders
    writing to one ``--dreamer-baseline-dir`` from different xdist workers (which no
    in-process check can see)."""
    module = Path(str(request.node.path))
    root = Path(baseline_dir) if baseline_dir else module.parent / "dreamer_baselines"
    identity = f"{request.node.nodeid}::{label}"
    return root / module.stem / f"{distinct_name(request.node.name, identity)}.json"


def make_audit(
    result: AuditResult,
    request: pytest.FixtureRequest,
    artifacts: Path,
    baseline_dir: str,
    update_baselines: bool,
    claimed: dict[Path, str],
    checks: list[Check] | None = None,
) -> DreamerAudit:
    """Bind an audit result to the requesting test. ``claimed`` maps each artifacts folder and
    baseline written in this process to its test, so that two tests never share one."""
    explanation = result.explanation
    settings = result.settings
    record = AuditRecord(
        checkpoint=settings.checkpoint,
        label=settings.label,
        key=result.key,
        game=explanation.game,
        settings=dataclasses.asdict(settings),
        metrics=explanation.metrics,
        mean_return=float(explanation.returns.mean()),
        images=tuple((str(path), caption(path.name, explanation)) for path in result.images),
        factor_facts=result.claims.facts,
        factor_status=result.claims.factors,
        score_facts=result.claims.scores,
        randomization=explanation.randomization,
        probes=explanation.probes,
        curves=explanation.curves,
    )
    evidence = artifact_directory(artifacts.resolve(), request.node.nodeid)
    baseline = _baseline_path(request, baseline_dir, settings.label)
    for path in (evidence, baseline.resolve()):
        owner = claimed.setdefault(path, request.node.nodeid)
        if owner != request.node.nodeid:
            pytest.fail(
                f"dreamer-audit: {request.node.nodeid} and {owner} would both write {path}; "
                "rename one of the tests",
                pytrace=False,
            )
    return DreamerAudit(
        explanation=explanation,
        result=result,
        evidence=evidence,
        baseline_path=baseline,
        update_baselines=update_baselines,
        record=record,
        checks=[] if checks is None else checks,
    )
