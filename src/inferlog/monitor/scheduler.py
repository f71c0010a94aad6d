"""Running the alert rules on a cadence: a named thread, one pass per interval, errors logged, stopped on close.

``inferlog serve`` runs one when the policy has alert rules and a MetricSource is available
(``INFERLOG_MONITOR_EVERY``, default 1m); ``inferlog monitor run --every`` runs the same loop in the
foreground. :func:`default_source` is where the built-in monitoring engine is found.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inferlog.errors import InferlogError, UsageError
from inferlog.monitor.alerts import Alerter
from inferlog.monitor.policy import MonitoringPolicy
from inferlog.monitor.source import MetricSource
from inferlog.monitor.webhooks import WebhookNotifier
from inferlog.periodic import Periodic
from inferlog.privacy.policy import Policy
from inferlog.store.protocols import EntryStore

log = logging.getLogger("inferlog.monitor.scheduler")

DEFAULT_EVERY = "1m"

SourceFactory = Callable[[Any, Policy, Any], MetricSource | None]
"""Makes a MetricSource from (store, policy, key store); None when it cannot measure this log."""


def default_source(store: Any, policy: Policy, keystore: Any) -> MetricSource | None:
    """The built-in monitoring engine over ``store``, with the policy's ``[monitoring]`` table.

    The key store lets the engine read sealed fields where the policy allows it. Imported here, not at
    the top: the engine's sketches bring numpy, which a server without alert rules need not load.
    """
    from inferlog.monitor.engine import Monitor

    source = Path(policy.source)
    base_dir = source.parent if source.is_file() else None
    return Monitor(store, policy.monitoring, privacy=policy, keyring=keystore, base_dir=base_dir)


def load_source_factory(target: str) -> SourceFactory:
    """A factory named ``module:callable`` (``--source``): called with (store, policy, key store)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"--source must be module:callable, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--source {target}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise UsageError(f"--source {target}: {module_name} has no callable {attribute}")
    made: SourceFactory = factory
    return made


def make_alerter(
    store: EntryStore,
    policy: MonitoringPolicy,
    source: MetricSource,
    *,
    actor: str = "monitor",
    webhooks: bool = True,
) -> Alerter:
    """An Alerter over ``store``, posting to the policy's webhooks (when it names any and ``webhooks``)."""
    wants = webhooks and (policy.webhooks or any(rule.webhooks for rule in policy.alerts))
    notifier = WebhookNotifier(policy) if wants else None
    return Alerter(store, policy, source, notifier=notifier, actor=actor)


class AlertSchedule:
    """Runs ``alerter.run_once`` every ``interval`` seconds in the thread ``inferlog-alerts`` until closed."""

    def __init__(self, alerter: Alerter, interval: float) -> None:
        self.alerter = alerter
        self.interval = interval
        self.failures = 0
        self._ticker = Periodic("inferlog-alerts", interval, self.run_once, first_now=True)

    def start(self) -> None:
        self._ticker.start()

    def run_once(self, now: dt.datetime | None = None) -> None:
        """One pass; a failure (the store down, say) is logged and counted, and the next pass tries again."""
        try:
            self.alerter.run_once(now)
        except InferlogError as exc:
            self.failures += 1
            log.error("alert rules not evaluated: %s", exc)
        except Exception:  # the schedule outlives any one failed pass
            self.failures += 1
            log.exception("alert rules not evaluated")

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the pass under way, then let the webhooks deliver what is queued (up to ``timeout``)."""
        self._ticker.stop(timeout)
        notifier = self.alerter.notifier
        if isinstance(notifier, WebhookNotifier):
            notifier.close(timeout)
