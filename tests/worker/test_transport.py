"""The SDK's nats:// transport against a real nats-server: acknowledged publishes, dedup, outages."""

from __future__ import annotations

from pathlib import Path

import pytest

import inferlog
from inferlog.broker import wire
from inferlog.errors import StoreUnavailable, UsageError
from inferlog.sdk.client import Log
from inferlog.sdk.nats import NatsTransport
from inferlog.testing import make_record
from tests.fix_nats import NatsServer
from tests.worker.jetstream import stream_count

MODEL = inferlog.Model("m", "1")


def test_open_with_a_nats_url_ships_to_the_stream(nats_server: NatsServer, tmp_path: Path) -> None:
    """inferlog.open("nats://...") spools records and publishes each, acknowledged, to the stream."""
    log = inferlog.open(f"{nats_server.url}?stream=INFERLOG", system="s", spool_dir=tmp_path / "spool")
    try:
        assert isinstance(log.transport, NatsTransport)
        ids = [log.record(model=MODEL, input={"i": i}) for i in range(300)]
        assert log.flush(30)
        assert log.counters.shipped == 300
        assert log.transport.counters.published == 300
    finally:
        log.close()
    assert stream_count(nats_server.url) == 300
    assert len(set(ids)) == 300


def test_a_resend_is_a_duplicate_within_the_window(nats_server: NatsServer) -> None:
    """Nats-Msg-Id = the entry's id: sending a batch again stores nothing twice (answered duplicate)."""
    transport = NatsTransport(nats_server.url)
    try:
        batch = [make_record() for _ in range(20)]
        first = transport.send(batch)
        again = transport.send(batch)
    finally:
        transport.close()
    assert [r.status for r in first] == ["new"] * 20
    assert [r.status for r in again] == ["duplicate"] * 20
    assert [r.id for r in again] == [e.id for e in batch]
    assert stream_count(nats_server.url) == 20


def test_a_broker_that_is_down_raises_so_the_shipper_keeps_the_batch(tmp_path: Path) -> None:
    """No broker: send() raises StoreUnavailable (the shipper's signal to keep and retry), never hangs."""
    from tests.helpers import free_port

    transport = NatsTransport(f"nats://127.0.0.1:{free_port()}", timeout=2)
    try:
        with pytest.raises(StoreUnavailable, match="cannot connect"):
            transport.send([make_record()])
        assert transport.counters.failed_batches == 1
    finally:
        transport.close()


def test_broker_down_then_up_loses_nothing(nats_server: NatsServer, tmp_path: Path) -> None:
    """Records made while the broker is down wait in the spool (pending, retries counted) and all arrive after."""
    log = inferlog.open(nats_server.url, system="s", spool_dir=tmp_path / "spool")
    try:
        before = [log.record(model=MODEL, input=i) for i in range(50)]
        assert log.flush(30)
        nats_server.kill()
        during = [log.record(model=MODEL, input=i) for i in range(200)]
        assert not log.flush(timeout=3)  # nowhere to go
        assert log.pending() == 200
        assert log.counters.retries > 0
        assert log.stats()["sdk"]["pending"] == 200
        nats_server.start()
        assert log.flush(60)
        assert log.pending() == 0
    finally:
        log.close()
    assert stream_count(nats_server.url) == len(before) + len(during)


def test_a_closed_log_leaves_its_backlog_for_the_next_open(nats_server: NatsServer, tmp_path: Path) -> None:
    """Closing while the broker is down keeps the spool; the next open (broker back) delivers it all."""
    nats_server.kill()
    log = inferlog.open(nats_server.url, system="s", spool_dir=tmp_path / "spool")
    for i in range(40):
        log.record(model=MODEL, input=i)
    assert not log.close(timeout=2)
    nats_server.start()
    again = inferlog.open(nats_server.url, system="s", spool_dir=tmp_path / "spool")
    try:
        assert again.flush(60)
    finally:
        again.close()
    assert stream_count(nats_server.url) == 40


def test_url_options_are_parsed_and_checked() -> None:
    """Stream, subject and replicas come from the URL; an unknown option or scheme is a UsageError."""
    target = wire.NatsTarget.parse("nats://a:4222,b:4222?stream=S&subject=x.y&replicas=3")
    assert target.servers == ("nats://a:4222", "nats://b:4222")
    assert (target.stream, target.subject, target.replicas, target.dead_letter_stream) == (
        "S",
        "x.y",
        3,
        "S_DEAD",
    )
    with pytest.raises(UsageError, match="unknown NATS URL option"):
        wire.NatsTarget.parse("nats://a:4222?strem=S")
    with pytest.raises(UsageError, match="replicas"):
        wire.NatsTarget.parse("nats://a:4222?replicas=9")
    for window in ("nan", "inf", "0", "-5", "1e400", "999999999"):
        with pytest.raises(UsageError, match="duplicate_window"):
            wire.NatsTarget.parse(f"nats://a:4222?duplicate_window={window}")
    with pytest.raises(UsageError, match="looks like"):
        wire.NatsTarget.parse("http://a:4222")


def test_the_log_type_is_the_sdk_log(nats_server: NatsServer, tmp_path: Path) -> None:
    """A nats:// Log records feedback too (any entry kind travels the same way)."""
    log: Log = inferlog.open(nats_server.url, system="s", spool_dir=tmp_path / "spool")
    try:
        inference_id = log.record(model=MODEL)
        log.feedback(inference_id, label=1)
        assert log.flush(30)
    finally:
        log.close()
    assert stream_count(nats_server.url) == 2


def test_the_backlog_shows_in_prometheus_metrics(nats_server: NatsServer, tmp_path: Path) -> None:
    """LogCollector: a model server's /metrics shows the spool's backlog while the broker is down, and its end."""
    from prometheus_client import CollectorRegistry, generate_latest

    from inferlog.sdk.prometheus import LogCollector

    log = inferlog.open(nats_server.url, system="s", spool_dir=tmp_path / "spool")
    registry = CollectorRegistry()
    registry.register(LogCollector(log))
    try:
        nats_server.kill()
        for i in range(30):
            log.record(model=MODEL, input=i)
        assert not log.flush(timeout=2)
        text = generate_latest(registry).decode()
        assert 'inferlog_sdk_pending{system="s"} 30.0' in text
        assert 'inferlog_transport_failed_batches_total{system="s"}' in text
        assert 'inferlog_transport_failed_batches_total{system="s"} 0.0' not in text
        nats_server.start()
        assert log.flush(60)
        text = generate_latest(registry).decode()
        assert 'inferlog_sdk_pending{system="s"} 0.0' in text
        assert 'inferlog_transport_published_total{system="s"} 30.0' in text
        assert 'inferlog_sdk_shipped_total{system="s"} 30.0' in text
    finally:
        log.close()
