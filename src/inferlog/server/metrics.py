"""Prometheus metrics about the log itself (so the logger is monitored too): accepted, rejected, written, write latency, backlog."""

from __future__ import annotations

import os
import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
