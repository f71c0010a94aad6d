"""Alert webhooks: each transition an evaluator wrote is POSTed as JSON, off the evaluator's thread.

The log entry comes first and never waits for a webhook: :class:`WebhookNotifier` queues the post and
a named background thread (``inferlog-alert-webhooks``) delivers it with bounded retries and
exponential backoff. A post that still fails, or finds the queue full, is counted in ``failed`` and
logged, never dropped without a word; the log's ``alert.*`` entry is the record either way. Only the
process that appended a transition posts it, so racing evaluators do not post twice.

A 2xx answer is delivered; 408, 429 and 5xx answers and transport errors are retried; any other
answer (a 4xx: the receiver refuses this request) fails at once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import httpx

from inferlog.monitor.alerts import Transition
from inferlog.monitor.policy import MonitoringPolicy
from inferlog.monitor.rules import mask_url

log = logging.getLogger("inferlog.monitor.webhooks")

_RETRY_STATUSES = frozenset({408, 429})


def payload(transition: Transition, entry_id: str) -> dict[str, Any]:
    """The JSON a webhook receives: the action, the log entry's id and time, and the entry's details."""
    return {
        "event": transition.action,
        "entry_id": entry_id,
        "ts": transition.at.isoformat().replace("+00:00", "Z"),
        **transition.details(),
    }


@dataclass(frozen=True, slots=True)
class _Post:
    url: str
    body: dict[str, Any]


class WebhookNotifier:
    """POSTs alert transitions to their webhooks from one named thread; counts ``sent`` and ``failed``.

    ``policy`` says where: a rule's own ``webhook`` list, else the ``[monitoring] webhooks``.
    ``attempts`` tries per post, waiting ``backoff`` seconds before the second, then twice as long
    each time. ``close(timeout)`` delivers what is queued (up to ``timeout``), then stops; what is
    left then is counted as failed.
    """

    def __init__(
        self,
        policy: MonitoringPolicy,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 10.0,
        max_queue: int = 10_000,
        client: httpx.Client | None = None,
    ) -> None:
        self.policy = policy
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.sent = 0
        self.failed = 0
        self.retries = 0
        self._queue: queue.Queue[_Post | None] = queue.Queue(maxsize=max_queue)
        self._client = client or httpx.Client(
            timeout=timeout, headers={"user-agent": f"inferlog/{version('inferlog')}"}, follow_redirects=False
        )
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def urls(self, transition: Transition) -> Sequence[str]:
        """Where this transition goes."""
        own = transition.rule.webhooks
        return own if own is not None else self.policy.webhooks

    def notify(self, transition: Transition, entry_id: str) -> None:
        """Queue a post of ``transition`` to each of its webhooks; returns at once."""
        body = payload(transition, entry_id)
        for url in self.urls(transition):
            self._start()
            try:
                self._queue.put_nowait(_Post(url, body))
            except queue.Full:
                self._count_failed(url, "the webhook queue is full")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued post is delivered or has failed; False if ``timeout`` passed first."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, name="inferlog-alert-webhooks-flush", daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then stop; the rest counts as failed."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            if not self.flush(timeout):
                self._abort.set()  # backoff waits end now; remaining posts fail (counted)
            self._queue.put(None)
            thread.join(timeout)
        self._client.close()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inferlog-alert-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            post = self._queue.get()
            try:
                if post is None:
                    return
                self._deliver(post)
            finally:
                self._queue.task_done()

    def _deliver(self, post: _Post) -> None:
        wait = self.backoff
        problem = ""
        for attempt in range(self.attempts):
            if self._abort.is_set():
                problem = f"not delivered before close ({problem or 'not tried'})"
                break
            if attempt:
                with self._lock:
                    self.retries += 1
                if self._abort.wait(wait):
                    problem = f"not delivered before close ({problem})"
                    break
                wait *= 2
            try:
                response = self._client.post(post.url, json=post.body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                with self._lock:
                    self.sent += 1
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in _RETRY_STATUSES:
                break  # the receiver refuses this request: retrying would not change its mind
        self._count_failed(post.url, problem)

    def _count_failed(self, url: str, problem: str) -> None:
        with self._lock:
            self.failed += 1
        log.error(
            "alert webhook %s failed: %s (the alert is in the log all the same)", mask_url(url), problem
        )
