"""The SDK's delivery counters as Prometheus metrics, for the model server's own ``/metrics``.

A model server that records through ``inferlog.open("nats://…")`` (or any URL) registers one
collector, and its scrape shows the backlog a broker or database outage leaves in the spool::

    from prometheus_client import REGISTRY
    from inferlog.sdk.prometheus import LogCollector

    REGISTRY.register(LogCollector(log))

``inferlog_sdk_pending`` is what waits in the spool; the counters are those of ``log.counters``
(``spooled``, ``shipped``, ``retries``, ...) and, for a NATS log, the transport's (``published``,
``duplicates``, ``failed_batches``). Read at scrape time, so it costs nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inferlog.sdk.client import Log


class LogCollector(Collector):
    """A prometheus_client collector over one Log (labelled with its system)."""

    def __init__(self, log: Log) -> None:
        self.log = log

    def collect(self) -> Iterator[Metric]:
        system = self.log.system
        pending = GaugeMetricFamily(
            "inferlog_sdk_pending", "Records in the spool not yet delivered", labels=["system"]
        )
        pending.add_metric([system], self.log.pending())
        yield pending
        for name, value in self.log.counters.as_dict().items():
            family = CounterMetricFamily(
                f"inferlog_sdk_{name}", f"Records {name} since this Log was opened", labels=["system"]
            )
            family.add_metric([system], value)
            yield family
        counters = getattr(self.log.transport, "counters", None)
        as_dict = getattr(counters, "as_dict", None)
        if callable(as_dict):
            for name, value in as_dict().items():
                family = CounterMetricFamily(
                    f"inferlog_transport_{name}", f"Transport: {name.replace('_', ' ')}", labels=["system"]
                )
                family.add_metric([system], value)
                yield family
