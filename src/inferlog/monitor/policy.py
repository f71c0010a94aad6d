"""What the policy file's ``[monitoring]`` table says, as frozen values (parsing lives beside it).

Shape of the table (documented for users in docs/monitoring.md)::

    [monitoring.systems.credit-scoring]
    features = ["income", "age", "employment"]   # optional: default = inferred from the inputs
    categorical = ["employment"]                  # optional: force a feature to be categorical
    task = "classification"                       # or "regression"; optional: inferred from outputs

    [monitoring.references.q3]                    # a reference for drift: a period of the log...
    system = "credit-scoring"
    since = 2026-07-01T00:00:00Z
    until = 2026-10-01T00:00:00Z
    # ...or a data set: file = "reference.parquet" (or .csv), relative to the policy file

    [[monitoring.alerts]]
    name = "credit errors"
    metric = "error_rate"                         # a MetricSource name, e.g. "psi:income"
    system = "credit-scoring"                     # model = "...", version = "..." narrow it
    above = 0.05                                  # or below = ...
    window = "15m"
    reference = "q3"                              # drift metrics only
    min_volume = 20                               # optional: no verdict on fewer records
    webhook = "https://hooks.example.com/credit"  # optional: instead of [monitoring] webhooks = [...]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

Task = Literal["classification", "regression"]


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Which input fields of one system are monitored as features, and how."""

    features: tuple[str, ...] | None = None  # None: inferred from the inputs themselves
    categorical: tuple[str, ...] = ()
    task: Task | None = None  # None: inferred from the outputs


@dataclass(frozen=True, slots=True)
class ReferenceSpec:
    """A named drift reference: a period of one system's log, or a data set file."""

    name: str
    system: str
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One rule: fire while ``metric`` over the trailing ``window`` is above/below its threshold."""

    name: str
    metric: str
    system: str
    window: dt.timedelta
    model: str | None = None
    version: str | None = None
    above: float | None = None
    below: float | None = None
    reference: str | None = None
    min_volume: int = 0
    webhooks: tuple[str, ...] | None = None  # None: the policy's [monitoring] webhooks


@dataclass(frozen=True, slots=True)
class MonitoringPolicy:
    """The whole ``[monitoring]`` table; empty when the policy file has none."""

    systems: Mapping[str, FeatureConfig] = field(default_factory=lambda: MappingProxyType({}))
    references: Mapping[str, ReferenceSpec] = field(default_factory=lambda: MappingProxyType({}))
    alerts: tuple[AlertRule, ...] = ()
    webhooks: tuple[
        str, ...
    ] = ()  # where every rule's alerts are POSTed (a rule's own webhook replaces them)

    def features_of(self, system: str) -> FeatureConfig:
        """The feature configuration of one system (inferred features when it has none)."""
        return self.systems.get(system, FeatureConfig())
