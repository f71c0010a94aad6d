"""Prometheus metrics about the log itself (so the logger is monitored too): accepted, rejected, written, write latency, backlog."""

from __future__ import annotations

import math
import os
import weakref
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        # Alert rules (inferlog.monitor.alerts), set after every evaluation pass.
        self.alert_firing = Gauge(
            "inferlog_alert_firing", "1 while the alert rule fires (as the log says), else 0", ["rule"],
            registry=self.registry,
        )  # fmt: skip
        self.alert_value = Gauge(
            "inferlog_alert_value", "The rule's metric at its last evaluation (NaN: no data)", ["rule"],
            registry=self.registry,
        )  # fmt: skip
        self.alert_evaluations = Counter(
            "inferlog_alert_evaluations", "Evaluation passes over the alert rules", registry=self.registry
        )
        self.alert_webhooks_sent = Counter(
            "inferlog_alert_webhooks_sent", "Alert webhook posts delivered", registry=self.registry
        )
        self.alert_webhooks_failed = Counter(
            "inferlog_alert_webhooks_failed",
            "Alert webhook posts that failed after their retries (the alert is in the log all the same)",
            registry=self.registry,
        )
        self._alert_counts = (0, 0, 0)
        _live.add(self)

    def observe_alerts(self, alerter: Alerter) -> None:
        """Set the alert gauges from an alerter after a pass: firing per rule, last value, webhook counts."""
        for rule in alerter.rules:
            self.alert_firing.labels(rule.name).set(1 if alerter.state.firing(rule.name) else 0)
            reading = alerter.readings.get(rule.name)
            value = reading.value if reading is not None else None
            self.alert_value.labels(rule.name).set(math.nan if value is None else value)
        notifier = alerter.notifier
        sent, failed = (getattr(notifier, "sent", 0), getattr(notifier, "failed", 0))
        passes, last_sent, last_failed = self._alert_counts
        self.alert_evaluations.inc(max(0, alerter.passes - passes))
        self.alert_webhooks_sent.inc(max(0, sent - last_sent))
        self.alert_webhooks_failed.inc(max(0, failed - last_failed))
        self._alert_counts = (alerter.passes, sent, failed)

    def render(self) -> bytes:
        return generate_latest(self.registry)
