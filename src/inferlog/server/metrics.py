"""Prometheus metrics about the log itself (so the logger is monitored too): accepted, rejected, written, write latency, backlog."""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from inferlog.monitor.alerts import Alerter

_live: weakref.WeakSet[ServerMetrics] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked worker counts its own requests, with fresh locks (a parent thread may have held one)."""
    for metrics in list(_live):
        metrics.__init__()  # type: ignore[misc]


os.register_at_fork(after_in_child=_after_fork_in_child)


class ServerMetrics:
    """One registry per app, so tests and several apps in one process do not share counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "inferlog_records_accepted",
            "Entries accepted by the ingest API (new or duplicate)",
            registry=self.registry,
        )
        self.rejected = Counter(
            "inferlog_records_rejected",
            "Entries refused by the ingest API",
            ["reason"],
            registry=self.registry,
        )
        self.written = Counter(
            "inferlog_records_written", "New entries written to the store", registry=self.registry
        )
        self.duplicates = Counter(
            "inferlog_records_duplicate",
            "Entries that were already in the log (retries)",
            registry=self.registry,
        )
        self.write_seconds = Histogram(
            "inferlog_write_seconds", "Time to append one batch to the store", registry=self.registry
        )
        self.backlog = Gauge(
            "inferlog_ingest_backlog", "Ingest requests received and not yet written", registry=self.registry
        )
        self.reads = Counter("inferlog_reads", "Audited reads", ["action"], registry=self.registry)
        self.store_errors = Counter(
            "inferlog_store_errors",
            "Requests that failed because the store was unavailable",
            registry=self.registry,
        )
        self.ledger_size = Gauge("inferlog_ledger_size", "Entries in the ledger", registry=self.registry)
        _live.add(self)

    def watch_alerts(self, alerter: Alerter) -> None:
        """Expose an alerter's rules and counters on ``/metrics``, read from it at each scrape."""
        self.registry.register(_AlertCollector(alerter))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _AlertCollector:
    """The alert rules' gauges and counters, read from the alerter when Prometheus scrapes: nothing to
    keep in step after each pass, and the counters are the alerter's own."""

    def __init__(self, alerter: Alerter) -> None:
        self.alerter = alerter

    def collect(self) -> Iterator[Metric]:
        alerter = self.alerter
        firing = GaugeMetricFamily(
            "inferlog_alert_firing", "1 while the alert rule fires (as the log says), else 0", labels=["rule"]
        )
        value = GaugeMetricFamily(
            "inferlog_alert_value", "The rule's metric at its last evaluation (NaN: no data)", labels=["rule"]
        )
        for rule in alerter.rules:
            firing.add_metric([rule.name], 1 if alerter.state.firing(rule.name) else 0)
            reading = alerter.readings.get(rule.name)
            measured = reading.value if reading is not None else None
            value.add_metric([rule.name], math.nan if measured is None else measured)
        notifier = alerter.notifier
        yield firing
        yield value
        yield CounterMetricFamily(
            "inferlog_alert_evaluations", "Evaluation passes over the alert rules", value=alerter.passes
        )
        yield CounterMetricFamily(
            "inferlog_alert_webhooks_sent",
            "Alert webhook posts delivered",
            value=getattr(notifier, "sent", 0),
        )
        yield CounterMetricFamily(
            "inferlog_alert_webhooks_failed",
            "Alert webhook posts that failed after their retries (the alert is in the log all the same)",
            value=getattr(notifier, "failed", 0),
        )
