"""Monitoring: measures kept over the log (volume, errors, latency, drift, ground truth) and alerts on them.

The seam between the two halves is :class:`MetricSource` in :mod:`inferlog.monitor.source`: the engine
(:class:`Monitor`, :mod:`inferlog.monitor.engine`) computes a metric for a scope and a window; the alert
rules only ask for numbers through it. docs/monitoring.md describes both.

The engine's names load on first use: its sketches bring numpy, which a command that does not
monitor (every other ``inferlog`` command imports this package's policy values) should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from inferlog.monitor.source import METRIC_NAMES, MetricSource, Scope

if TYPE_CHECKING:
    from inferlog.monitor.drift import FeatureDrift
    from inferlog.monitor.engine import DriftReport, Monitor, ScopeSummary, add_reference
    from inferlog.monitor.reference import Reference

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

_LAZY = {
    "DriftReport": "inferlog.monitor.engine",
    "FeatureDrift": "inferlog.monitor.drift",
    "Monitor": "inferlog.monitor.engine",
    "Reference": "inferlog.monitor.reference",
    "ScopeSummary": "inferlog.monitor.engine",
    "add_reference": "inferlog.monitor.engine",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inferlog.monitor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
