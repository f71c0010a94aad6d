"""Alert webhooks: a real local HTTP server receives the posts; failures are retried with backoff,
counted and logged, and never keep the alert out of the log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from inferlog.monitor.alerts import ALERT_FIRED, ALERT_RESOLVED, Alerter
from inferlog.monitor.policy import AlertRule, MonitoringPolicy
from inferlog.monitor.webhooks import WebhookNotifier
from inferlog.store import Store, open_store
from inferlog.store.base import Query
from tests.helpers import free_port, wait_for
from tests.monitor.alerting import T0, EventSource
from tests.monitor.test_alerts import MINUTE, bad_window


@dataclass
class Receiver:
    """A tiny HTTP server that keeps what it was POSTed and answers the statuses it is told, in turn."""

    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once they run out
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                receiver.posts.append((self.path, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), found.handler())
    thread = threading.Thread(target=server.serve_forever, name="test-webhook-receiver", daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{port}"
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    yield opened
    opened.close()


def rule(**changes: Any) -> AlertRule:
    values: dict[str, Any] = {
        "name": "credit errors", "metric": "error_rate", "system": "credit", "window": 15 * MINUTE,
        "above": 0.05,
    }  # fmt: skip
    values.update(changes)
    return AlertRule(**values)


def test_fire_and_resolve_are_posted_with_the_entry_id(store: Store, receiver: Receiver) -> None:
    """Both transitions reach the global webhook as JSON naming the action, the log entry and the numbers."""
    policy = MonitoringPolicy(alerts=(rule(),), webhooks=(f"{receiver.url}/all",))
    notifier = WebhookNotifier(policy, backoff=0.01)
    source = EventSource()
    bad_window(source, T0)
    alerter = Alerter(store, policy, source, notifier=notifier)
    [fired] = alerter.run_once(T0)
    later = T0 + 30 * MINUTE
    source.add(later - MINUTE, count=50)
    [resolved] = alerter.run_once(later)
    assert notifier.flush(30)
    notifier.close()
    assert [path for path, _ in receiver.posts] == ["/all", "/all"]
    first, second = (body for _, body in receiver.posts)
    assert first["event"] == ALERT_FIRED
    assert first["entry_id"] == fired.id
    assert store.get(fired.id) is not None
    assert first["rule"] == "credit errors"
    assert first["value"] == pytest.approx(0.15)
    assert first["threshold"] == 0.05
    assert first["ts"] == "2026-11-02T12:00:00Z"
    assert second["event"] == ALERT_RESOLVED
    assert second["entry_id"] == resolved.id
    assert (notifier.sent, notifier.failed) == (2, 0)


def test_a_rules_own_webhook_replaces_the_global_ones(store: Store, receiver: Receiver) -> None:
    """A rule with webhook = ... posts there only; other rules use [monitoring] webhooks."""
    own = rule(name="own", webhooks=(f"{receiver.url}/own",))
    shared = rule(name="shared")
    policy = MonitoringPolicy(alerts=(own, shared), webhooks=(f"{receiver.url}/shared",))
    notifier = WebhookNotifier(policy)
    source = EventSource()
    bad_window(source, T0)
    Alerter(store, policy, source, notifier=notifier).run_once(T0)
    assert notifier.flush(30)
    notifier.close()
    assert sorted((path, body["rule"]) for path, body in receiver.posts) == [
        ("/own", "own"),
        ("/shared", "shared"),
    ]


def test_server_errors_are_retried_with_backoff(store: Store, receiver: Receiver) -> None:
    """Two 503s, then 200: the same post is tried three times and counted once as sent."""
    receiver.statuses = [503, 503]
    policy = MonitoringPolicy(alerts=(rule(),), webhooks=(receiver.url,))
    notifier = WebhookNotifier(policy, attempts=4, backoff=0.01)
    source = EventSource()
    bad_window(source, T0)
    Alerter(store, policy, source, notifier=notifier).run_once(T0)
    assert notifier.flush(30)
    notifier.close()
    assert len(receiver.posts) == 3
    assert len({json.dumps(body, sort_keys=True) for _, body in receiver.posts}) == 1
    assert (notifier.sent, notifier.failed, notifier.retries) == (1, 0, 2)


def test_a_failing_webhook_is_counted_and_logged_and_the_alert_is_on_record(
    store: Store, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Retries run out (or the receiver refuses with a 4xx, or nobody listens): failed++, an error line, the entry stays."""
    receiver.statuses = [500, 500, 400]
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    policy = MonitoringPolicy(alerts=(rule(),), webhooks=(receiver.url + "/secret-path", dead))
    notifier = WebhookNotifier(policy, attempts=2, backoff=0.01)
    source = EventSource()
    bad_window(source, T0)
    [fired] = Alerter(store, policy, source, notifier=notifier).run_once(T0)
    assert store.get(fired.id) is not None  # written before any post was tried
    assert notifier.flush(30)
    notifier.close()
    assert (notifier.sent, notifier.failed) == (0, 2)
    assert len(receiver.posts) == 2  # two attempts, both 500
    failures = [r.getMessage() for r in caplog.records if r.name == "inferlog.monitor.webhooks"]
    assert len(failures) == 2
    assert any("HTTP 500" in line for line in failures)
    assert any("ConnectError" in line for line in failures)
    assert all("secret-path" not in line for line in failures)  # the URL's path is masked in logs


def test_a_4xx_is_not_retried(store: Store, receiver: Receiver) -> None:
    """A receiver that refuses the request (400) is asked once: retrying would not change its answer."""
    receiver.statuses = [400]
    policy = MonitoringPolicy(alerts=(rule(),), webhooks=(receiver.url,))
    notifier = WebhookNotifier(policy, attempts=4, backoff=0.01)
    source = EventSource()
    bad_window(source, T0)
    Alerter(store, policy, source, notifier=notifier).run_once(T0)
    assert notifier.flush(30)
    notifier.close()
    assert len(receiver.posts) == 1
    assert (notifier.sent, notifier.failed, notifier.retries) == (0, 1, 0)


def test_close_gives_up_waiting_posts_as_failed(store: Store, receiver: Receiver) -> None:
    """A post still backing off when close() times out is counted as failed, not lost without a word."""
    receiver.statuses = [503] * 10
    policy = MonitoringPolicy(alerts=(rule(),), webhooks=(receiver.url,))
    notifier = WebhookNotifier(policy, attempts=10, backoff=3600)  # the second try would wait an hour
    source = EventSource()
    bad_window(source, T0)
    Alerter(store, policy, source, notifier=notifier).run_once(T0)
    wait_for(lambda: receiver.posts, "the first attempt")
    notifier.close(timeout=0.2)
    assert (notifier.sent, notifier.failed) == (0, 1)
    assert len(store.query(Query(kind="admin")).entries) == 1
