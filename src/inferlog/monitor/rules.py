"""Reading the policy file's ``[monitoring]`` table into a :class:`MonitoringPolicy`, strictly.

An alert rule that is silently wrong (a misspelt ``abov``, a drift metric without a reference) is an
alert that never fires, which post-market monitoring cannot tell from "all is well". So every problem
stops the program with one line naming the file, the key and the reason, like the rest of the policy
file (:mod:`inferlog.privacy.policy`, which calls :func:`parse_monitoring` for its ``monitoring``
table).

Pure: plain data in, frozen values out (imports only the standard library and ``inferlog.errors``).
:func:`monitoring_to_dict` is the normalized view the policy's digest is taken over; it never shows a
webhook URL whole (a chat webhook's URL is its secret, and the policy is recorded in the log).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from inferlog.monitor.policy import AlertRule, FeatureConfig, MonitoringPolicy, ReferenceSpec
from inferlog.monitor.source import FEATURE_METRICS, METRIC_NAMES
from inferlog.privacy.tables import TableChecker, key_path, show

DRIFT_METRICS = ("psi", "jsd", "wasserstein")
"""Per-feature metrics that compare a window with a reference: a rule on them must name one."""
REFERENCE_FILE_TYPES = (".parquet", ".csv")
WINDOW_HINT = "use e.g. 30s, 15m, 1h, 1d or 1h30m"

_TOP = ("alerts", "references", "systems", "webhooks")
_SYSTEM = ("categorical", "features", "task")
_REFERENCE = ("file", "since", "system", "until")
_RULE = (
    "above", "below", "metric", "min_volume", "model", "name", "reference", "system", "version",
    "webhook", "window",
)  # fmt: skip
_TASKS = ("classification", "regression")
_WINDOW = re.compile(r"(?:(\d{1,6})w)?(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_window(text: str) -> dt.timedelta:
    """``<n>w``, ``<n>d``, ``<n>h``, ``<n>m`` (minutes), ``<n>s``, or several in that order (``1h30m``).

    Raises ValueError with a message for people (the callers put the key in front).
    """
    match = _WINDOW.fullmatch(text)
    if not text or match is None:
        raise ValueError(f'"{text}" is not a window ({WINDOW_HINT})')
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    value = dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if value <= dt.timedelta(0):
        raise ValueError(f'"{text}" is not a window: it must be longer than zero')
    return value


def format_window(value: dt.timedelta) -> str:
    """A window as the policy file writes it: ``15m``, ``1h30m``, ``2d`` (the inverse of parse_window)."""
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


def split_metric(metric: str) -> tuple[str, str | None]:
    """``"psi:income"`` -> ``("psi", "income")``; ``"error_rate"`` -> ``("error_rate", None)``."""
    name, sep, feature = metric.partition(":")
    return name, (feature if sep else None)


def parse_monitoring(
    value: Any, *, source: str = "inferlog.toml", base_dir: Path | None = None
) -> MonitoringPolicy:
    """The ``[monitoring]`` table (as ``tomllib`` reads it) as a :class:`MonitoringPolicy`.

    Every problem is a one-line :class:`UsageError` ``"<source>: monitoring.<key>: <reason>"``.
    A reference ``file`` relative to the policy file is resolved against ``base_dir``.
    """
    return _Parser(source).monitoring(value, base_dir)


def monitoring_to_dict(policy: MonitoringPolicy) -> dict[str, Any]:
    """A normalized, JSON-ready view (windows as strings, times ISO, webhook URLs masked)."""
    return {
        "alerts": [_rule_dict(rule) for rule in sorted(policy.alerts, key=lambda r: r.name)],
        "references": {name: _reference_dict(policy.references[name]) for name in sorted(policy.references)},
        "systems": {
            name: {
                "categorical": sorted(config.categorical),
                "features": None if config.features is None else list(config.features),
                "task": config.task,
            }
            for name, config in sorted(policy.systems.items())
        },
        "webhooks": [mask_url(url) for url in policy.webhooks],
    }


def mask_url(url: str) -> str:
    """What a webhook URL may show in the log: its scheme and host, and a digest of the whole URL.

    The path and query of a chat webhook are its secret; the digest still changes when they do, so a
    changed URL is a changed policy.
    """
    parts = urlsplit(url)
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return f"{parts.scheme}://{parts.hostname}/…#sha256:{digest}"


def _rule_dict(rule: AlertRule) -> dict[str, Any]:
    return {
        "above": rule.above,
        "below": rule.below,
        "metric": rule.metric,
        "min_volume": rule.min_volume,
        "model": rule.model,
        "name": rule.name,
        "reference": rule.reference,
        "system": rule.system,
        "version": rule.version,
        "webhooks": None if rule.webhooks is None else [mask_url(url) for url in rule.webhooks],
        "window": format_window(rule.window),
    }


def _reference_dict(ref: ReferenceSpec) -> dict[str, Any]:
    return {
        "file": None if ref.file is None else str(ref.file),
        "since": _iso(ref.since),
        "system": ref.system,
        "until": _iso(ref.until),
    }


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class _Parser(TableChecker):
    """One pass over the ``[monitoring]`` table (the checks every table shares are TableChecker's)."""

    def names(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(where, f"must be a list of non-empty strings, not {show(value)}")
        for i, name in enumerate(value):
            if name in value[:i]:
                self.fail(where, f'"{name}" is listed twice')
        return tuple(value)

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(where, f"must be a finite number, not {show(value)}")
        return float(value)

    def url(self, value: Any, where: str) -> str:
        text = self.string(value, where)
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(where, f"{show(text)} is not an http(s) URL (e.g. https://hooks.example.com/alerts)")
        return text

    def urls(self, value: Any, where: str) -> tuple[str, ...]:
        if isinstance(value, str):
            return (self.url(value, where),)
        if not isinstance(value, list):
            self.fail(where, f"must be a URL or a list of URLs, not {show(value)}")
        return tuple(self.url(item, key_path(where, i)) for i, item in enumerate(value))

    # -- tables --------------------------------------------------------------------------------

    def monitoring(self, value: Any, base_dir: Path | None) -> MonitoringPolicy:
        data = self.table(value, "monitoring")
        self.keys(data, _TOP, "monitoring")
        systems = {
            name: self.system(table, key_path("monitoring.systems", name))
            for name, table in self.table(data.get("systems", {}), "monitoring.systems").items()
        }
        references = {
            name: self.reference(name, table, key_path("monitoring.references", name), base_dir)
            for name, table in self.table(data.get("references", {}), "monitoring.references").items()
        }
        webhooks = self.urls(data.get("webhooks", []), "monitoring.webhooks")
        rules = data.get("alerts", [])
        if not isinstance(rules, list):
            self.fail(
                "monitoring.alerts", f"must be a list of tables ([[monitoring.alerts]]), not {show(rules)}"
            )
        alerts: list[AlertRule] = []
        for i, table in enumerate(rules):
            rule = self.rule(table, key_path("monitoring.alerts", i), systems, references)
            if any(known.name == rule.name for known in alerts):
                self.fail(
                    key_path("monitoring.alerts", i, "name"),
                    f'another rule is already called "{rule.name}"; names must be unique '
                    "(the log keeps each rule's alerts under its name)",
                )
            alerts.append(rule)
        return MonitoringPolicy(
            systems=MappingProxyType(systems),
            references=MappingProxyType(references),
            alerts=tuple(alerts),
            webhooks=webhooks,
        )

    def system(self, value: Any, where: str) -> FeatureConfig:
        table = self.table(value, where)
        self.keys(table, _SYSTEM, where)
        features = self.names(table["features"], key_path(where, "features")) if "features" in table else None
        categorical = self.names(table.get("categorical", []), key_path(where, "categorical"))
        if features is not None:
            for name in categorical:
                if name not in features:
                    self.fail(
                        key_path(where, "categorical"),
                        f'"{name}" is not one of the features ({", ".join(features)}); add it to features',
                    )
        task = table.get("task")
        if task is not None and task not in _TASKS:
            self.fail(key_path(where, "task"), f"must be one of {', '.join(_TASKS)}, not {show(task)}")
        return FeatureConfig(features=features, categorical=categorical, task=task)

    def reference(self, name: str, value: Any, where: str, base_dir: Path | None) -> ReferenceSpec:
        table = self.table(value, where)
        self.keys(table, _REFERENCE, where)
        if "system" not in table:
            self.fail(where, "system is required (the system whose records the reference stands for)")
        system = self.string(table["system"], key_path(where, "system"))
        has_period = "since" in table or "until" in table
        if has_period and "file" in table:
            self.fail(where, "give either a period (since, until) or a file, not both")
        if "file" in table:
            text = self.string(table["file"], key_path(where, "file"))
            path = Path(text)
            if path.suffix.lower() not in REFERENCE_FILE_TYPES:
                self.fail(key_path(where, "file"), f"{show(text)} must be a .parquet or .csv file")
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            return ReferenceSpec(name=name, system=system, file=path)
        if not has_period:
            self.fail(where, 'give a period (since = ..., until = ...) or a file = "reference.parquet"')
        for required in ("since", "until"):
            if required not in table:
                self.fail(where, f"{required} is required with a period (since and until)")
        since = self.instant(table["since"], key_path(where, "since"))
        until = self.instant(table["until"], key_path(where, "until"))
        if since >= until:
            self.fail(where, f"since {_iso(since)} is not before until {_iso(until)}")
        return ReferenceSpec(name=name, system=system, since=since, until=until)

    def instant(self, value: Any, where: str) -> dt.datetime:
        """A TOML datetime with an offset, or a date (midnight UTC)."""
        if isinstance(value, dt.datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                self.fail(where, f"{value.isoformat()} has no timezone (write e.g. {value.isoformat()}Z)")
            return value.astimezone(dt.UTC)
        if not isinstance(value, dt.date):
            self.fail(
                where,
                f"must be a date or a datetime with a timezone (2026-07-01T00:00:00Z), not {show(value)}",
            )
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)

    def rule(
        self,
        value: Any,
        where: str,
        systems: Mapping[str, FeatureConfig],
        references: Mapping[str, ReferenceSpec],
    ) -> AlertRule:
        table = self.table(value, where)
        self.keys(table, _RULE, where)
        for required in ("name", "metric", "system", "window"):
            if required not in table:
                self.fail(where, f"{required} is required")
        name = self.string(table["name"], key_path(where, "name"))
        system = self.string(table["system"], key_path(where, "system"))
        metric = self.metric(table["metric"], key_path(where, "metric"), systems.get(system))
        model = self.string(table["model"], key_path(where, "model")) if "model" in table else None
        version = self.string(table["version"], key_path(where, "version")) if "version" in table else None
        if version is not None and model is None:
            self.fail(key_path(where, "version"), "a version needs its model (add model = ...)")
        if not isinstance(table["window"], str):
            self.fail(key_path(where, "window"), f"{show(table['window'])} is not a window ({WINDOW_HINT})")
        try:
            window = parse_window(table["window"])
        except ValueError as e:
            self.fail(key_path(where, "window"), str(e))
        above = self.number(table["above"], key_path(where, "above")) if "above" in table else None
        below = self.number(table["below"], key_path(where, "below")) if "below" in table else None
        if (above is None) == (below is None):
            both = "both above and below" if above is not None else "neither above nor below"
            self.fail(where, f"give exactly one threshold, above = ... or below = ... (this rule has {both})")
        reference = self.rule_reference(table, where, metric, references)
        min_volume = table.get("min_volume", 0)
        if isinstance(min_volume, bool) or not isinstance(min_volume, int) or min_volume < 0:
            self.fail(key_path(where, "min_volume"), f"must be a whole number >= 0, not {show(min_volume)}")
        webhooks = self.urls(table["webhook"], key_path(where, "webhook")) if "webhook" in table else None
        return AlertRule(
            name=name, metric=metric, system=system, window=window, model=model, version=version,
            above=above, below=below, reference=reference, min_volume=min_volume, webhooks=webhooks,
        )  # fmt: skip

    def metric(self, value: Any, where: str, config: FeatureConfig | None) -> str:
        text = self.string(value, where)
        name, feature = split_metric(text)
        if feature is None:
            if name in FEATURE_METRICS:
                self.fail(where, f'"{name}" is measured per feature: write "{name}:<feature>"')
            if name not in METRIC_NAMES:
                close = difflib.get_close_matches(name, (*METRIC_NAMES, *FEATURE_METRICS), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                self.fail(
                    where,
                    f'unknown metric "{name}" (known: {", ".join(METRIC_NAMES)}; per feature: '
                    f"{', '.join(f'{m}:<feature>' for m in FEATURE_METRICS)}){hint}",
                )
            return text
        if name not in FEATURE_METRICS:
            close = difflib.get_close_matches(name, FEATURE_METRICS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            self.fail(
                where, f'"{name}" is not a per-feature metric (known: {", ".join(FEATURE_METRICS)}){hint}'
            )
        if not feature.strip():
            self.fail(where, f'name the feature: "{name}:<feature>"')
        if config is not None and config.features is not None and feature not in config.features:
            self.fail(
                where,
                f'feature "{feature}" is not monitored for this system (its features: '
                f"{', '.join(config.features)}); add it to [monitoring.systems.<system>] features",
            )
        return text

    def rule_reference(
        self,
        table: Mapping[str, Any],
        where: str,
        metric: str,
        references: Mapping[str, ReferenceSpec],
    ) -> str | None:
        name, feature = split_metric(metric)
        if "reference" not in table:
            if name in DRIFT_METRICS:
                known = f" (defined: {', '.join(sorted(references))})" if references else ""
                self.fail(
                    where,
                    f'"{name}" compares with a reference: add reference = "<name>" naming a '
                    f"[monitoring.references.<name>]{known}",
                )
            return None
        reference = self.string(table["reference"], key_path(where, "reference"))
        if feature is None:
            self.fail(
                key_path(where, "reference"),
                f'"{metric}" takes no reference (only per-feature metrics: {", ".join(FEATURE_METRICS)})',
            )
        if _UUID.fullmatch(reference):
            return reference  # a period of use, by its id (inferlog periods)
        if reference not in references:
            known = ", ".join(sorted(references)) or "none defined"
            close = difflib.get_close_matches(reference, list(references), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            self.fail(
                key_path(where, "reference"),
                f'unknown reference "{reference}" (known: {known}; define it as '
                f"[monitoring.references.{reference}]){hint}",
            )
        return reference
