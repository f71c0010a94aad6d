"""Monitoring: measures kept over the log (volume, errors, latency, drift, ground truth) and alerts on them.

The seam between the two halves is :class:`MetricSource` in :mod:`inferlog.monitor.source`: the engine
(:class:`Monitor`, :mod:`inferlog.monitor.engine`) computes a metric for a scope and a window; the alert
rules only ask for numbers through it. docs/monitoring.md describes both.
"""

from inferlog.monitor.drift import FeatureDrift
from inferlog.monitor.engine import DriftReport, Monitor, ScopeSummary, add_reference
from inferlog.monitor.reference import Reference
from inferlog.monitor.source import METRIC_NAMES, MetricSource, Scope

__all__ = [
    "METRIC_NAMES",
    "DriftReport",
    "FeatureDrift",
    "MetricSource",
    "Monitor",
    "Reference",
    "Scope",
    "ScopeSummary",
    "add_reference",
]
