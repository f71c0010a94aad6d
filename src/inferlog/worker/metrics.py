"""A worker's Prometheus metrics and health, served by one named thread on ``--metrics-port``.

``GET /metrics`` is the Prometheus exposition; ``GET /healthz`` answers 200 while the worker is
connected to the broker and its last append did not fail, else 503 with the reason (for a
Kubernetes liveness/readiness probe). Everything else is 404.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)


class WorkerMetrics:
    """One registry per worker (tests run several in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.lag = Gauge(
            "inferlog_worker_consumer_lag",
            "Messages in the stream not yet acknowledged by the workers (pending + in flight)",
            registry=r,
        )
        self.batch_size = Histogram(
            "inferlog_worker_batch_size", "Messages per fetched batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.prepare_seconds = Histogram(
            "inferlog_worker_prepare_seconds",
            "Time to prepare one batch outside the lock (decode, policy, canonical body, leaf hash)",
            registry=r,
        )
        self.append_seconds = Histogram(
            "inferlog_worker_append_seconds", "Time to append one batch in one transaction", registry=r
        )
        self.records = Counter(
            "inferlog_worker_records", "Entries appended, by outcome (new, duplicate)", ["status"], registry=r
        )
        self.redeliveries = Counter(
            "inferlog_worker_redeliveries",
            "Messages delivered more than once (JetStream's count)",
            registry=r,
        )
        self.dead_letters = Counter(
            "inferlog_worker_dead_letters", "Messages moved to the dead-letter subject", registry=r
        )
        self.store_errors = Counter(
            "inferlog_worker_store_errors", "Appends that failed and were retried", registry=r
        )
        self.broker_errors = Counter(
            "inferlog_worker_broker_errors", "Fetches or acknowledgements that failed", registry=r
        )
        self.signer = Gauge(
            "inferlog_worker_signer", "1 while this worker is the elected checkpoint signer", registry=r
        )
        self.checkpoints = Counter(
            "inferlog_worker_checkpoints", "Checkpoints this worker signed", registry=r
        )
        self.health: dict[str, Any] = {"status": "starting"}

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a port, in the named daemon thread ``inferlog-worker-metrics``."""

    def __init__(self, metrics: WorkerMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        handler = _handler(metrics)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="inferlog-worker-metrics", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout)


def _handler(metrics: WorkerMetrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                health = dict(metrics.health)
                status = 200 if health.get("status") == "ok" else 503
                self._answer(status, json.dumps(health).encode(), "application/json")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds: not worth a log line each

    return Handler
