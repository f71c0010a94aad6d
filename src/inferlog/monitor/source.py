"""The seam between the monitoring engine and whatever consumes its numbers (alert rules, the console).

A metric is named by a string: a plain name (``error_rate``) or a per-feature name (``psi:income``).
A source answers one metric over one scope and one half-open time window ``[since, until)``; ``None``
means "no data in that window" (no records, no labels), which a rule must not confuse with 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Plain metrics every source understands. Per-feature metrics are "<name>:<feature>" with the names in
# FEATURE_METRICS; drift metrics take the reference (a stored reference set's name or a period id).
METRIC_NAMES = (
    "volume",  # records in the window
    "error_rate",  # fraction of records with status "error"
    "latency_p50",  # milliseconds
    "latency_p95",
    "latency_p99",
    "accuracy",  # classifiers, from feedback labels joined to their inferences
    "precision",  # macro-averaged over classes
    "recall",
    "f1",
    "mae",  # regressors
    "rmse",
    "override_rate",  # fraction of reviewed records whose human decision differs from the output
    "label_delay_p50",  # seconds from inference to its feedback
)
FEATURE_METRICS = ("psi", "jsd", "wasserstein", "missing_rate", "type_change_rate")


@dataclass(frozen=True, slots=True)
class Scope:
    """What a metric is about: one system, optionally narrowed to a model and a model version."""

    system: str
    model: str | None = None
    version: str | None = None


class MetricSource(Protocol):
    """Answers one metric for one scope over ``[since, until)``; ``None`` when there is no data."""

    def metric(
        self,
        name: str,
        scope: Scope,
        since: datetime,
        until: datetime,
        *,
        reference: str | None = None,
    ) -> float | None: ...
