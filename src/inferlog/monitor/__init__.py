"""Monitoring: measures kept over the log (volume, errors, latency, drift, ground truth) and alerts on them.

The seam between the two halves is :class:`MetricSource` in :mod:`inferlog.monitor.source`: the engine
computes a metric for a scope and a window; the alert rules only ask for numbers through it.
"""

from inferlog.monitor.source import METRIC_NAMES, MetricSource, Scope

__all__ = ["METRIC_NAMES", "MetricSource", "Scope"]
