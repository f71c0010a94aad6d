"""``inferlog worker`` against a real nats-server and PostgreSQL: exactly once, ack after commit, dead letters."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from click.testing import CliRunner
from nats.aio.msg import Msg

import inferlog
from inferlog.broker import wire
from inferlog.cli import cli
from inferlog.integrity.checkpointer import CheckpointCadence, Checkpointer
from inferlog.integrity.signing_keys import init_signer
from inferlog.record.model import AdminEntry
from inferlog.sdk.nats import NatsTransport
from inferlog.store import Store
from inferlog.store.migrations.postgres import LOCK_NAMESPACE, LOCK_SEQUENCER
from inferlog.testing import make_record
from inferlog.worker import DEAD_LETTER_ACTION, MetricsServer, SignerElection, Worker, WorkerMetrics
from tests.fix_nats import NatsServer
from tests.helpers import free_port, wait_for
from tests.worker.conftest import StartWorker
from tests.worker.jetstream import (
    add_stream,
    consumer_state,
    dead_letters,
    delete_stream,
    nak_times,
    publish,
    publish_raw,
)


def _publish_records(url: str, n: int) -> list[str]:
    transport = NatsTransport(url)
    try:
        batch = [make_record(input={"i": i}) for i in range(n)]
        for start in range(0, n, 500):
            transport.send(batch[start : start + 500])
    finally:
        transport.close()
    return [entry.id for entry in batch]


def _ids_in(store: Store, kind: str = "inference") -> list[str]:
    ids: list[str] = []
    after = 0
    while True:
        page = store.query(inferlog.Query(kind=kind, after=after, limit=1000))
        ids += [stored.entry.id for stored in page.entries]
        if page.next_cursor is None:
            return ids
        after = page.next_cursor


def test_every_published_entry_is_appended_once(
    nats_server: NatsServer, pg_store: Store, start_worker: StartWorker
) -> None:
    """Two workers share the durable consumer: every entry lands once, seq is gap-free, the lag drains to 0."""
    ids = _publish_records(nats_server.url, 1200)
    workers = [start_worker(nats_server.url, options={"batch_size": 100}) for _ in range(2)]
    wait_for(lambda: pg_store.size() == 1200, "1200 entries in the store", seconds=60)
    stored = _ids_in(pg_store)
    assert sorted(stored) == sorted(ids)
    assert [s.seq for s in pg_store.scan(0, 2000)] == list(range(1, 1201))
    assert sum(w.appended for w in workers) == 1200
    wait_for(lambda: consumer_state(nats_server.url) == {"pending": 0, "ack_pending": 0}, "lag 0")
    wait_for(lambda: all(w.metrics.lag._value.get() == 0 for w in workers), "the lag gauge at 0")


class DiesBeforeAck(Worker):
    """A worker that commits its first batch and stops before acknowledging it (as if killed there)."""

    def _ack(self, messages: Sequence[Msg]) -> None:
        self.drain()

    def _finish_ahead(self, ahead: Any) -> None:
        pass  # dead: the batch it fetched ahead is never processed either


def test_killed_between_commit_and_ack_makes_no_duplicate(
    nats_server: NatsServer, pg_store: Store, start_worker: StartWorker
) -> None:
    """Messages committed but never acknowledged are redelivered, and answered as duplicates: once in the log."""
    ids = _publish_records(nats_server.url, 300)
    first = start_worker(nats_server.url, cls=DiesBeforeAck, options={"batch_size": 100, "ack_wait": 2})
    wait_for(lambda: first.draining and pg_store.size() == 100, "the first batch committed, unacknowledged")
    assert consumer_state(nats_server.url)["ack_pending"] >= 100  # its batch (and one fetched ahead)
    second = start_worker(nats_server.url, options={"batch_size": 100, "ack_wait": 2})
    wait_for(lambda: consumer_state(nats_server.url) == {"pending": 0, "ack_pending": 0}, "lag 0", seconds=60)
    assert sorted(_ids_in(pg_store)) == sorted(ids)
    assert pg_store.size() == 300
    assert second.metrics.records.labels("duplicate")._value.get() == 100
    assert second.metrics.redeliveries._value.get() >= 100  # and the batch the first had fetched ahead


def test_acknowledged_only_after_the_commit(
    nats_server: NatsServer, pg_url: str, pg_store: Store, start_worker: StartWorker
) -> None:
    """While the append waits for the sequencer, the batch stays delivered-but-unacknowledged; after, acked."""
    with psycopg.connect(pg_url, autocommit=True) as blocker:
        blocker.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_SEQUENCER))
        _publish_records(nats_server.url, 50)
        start_worker(nats_server.url, options={"batch_size": 50})
        wait_for(lambda: consumer_state(nats_server.url)["ack_pending"] == 50, "the batch delivered")
        assert pg_store.size() == 0
        assert consumer_state(nats_server.url)["ack_pending"] == 50  # nothing acknowledged before the commit
        blocker.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, LOCK_SEQUENCER))
    wait_for(lambda: consumer_state(nats_server.url) == {"pending": 0, "ack_pending": 0}, "acknowledged")
    assert pg_store.size() == 50


def test_dead_letter_after_n_deliveries(
    nats_server: NatsServer, pg_url: str, pg_store: Store, start_worker: StartWorker
) -> None:
    """A message delivered more than max_deliver times is dead-lettered: DLQ stream, admin entry, metrics, stats."""
    [poison] = _publish_records(nats_server.url, 1)
    assert nak_times(nats_server.url, 3) == 3  # three deliveries that came to nothing
    worker = start_worker(nats_server.url, options={"max_deliver": 3})
    wait_for(lambda: worker.dead_lettered == 1, "the dead letter")
    [good] = _publish_records(nats_server.url, 1)
    wait_for(lambda: pg_store.get(good) is not None, "a later record appended")
    assert pg_store.get(poison) is None
    [letter] = [s.entry for s in pg_store.query(inferlog.Query(kind="admin")).entries]
    assert isinstance(letter, AdminEntry)
    assert letter.action == DEAD_LETTER_ACTION
    assert letter.details["entry_id"] == poison
    assert "delivered more than 3 times" in letter.details["reason"]
    [dlq] = dead_letters(nats_server.url)
    assert dlq["headers"][wire.DELIVERIES] == "4"
    assert "delivered more than 3 times" in dlq["headers"][wire.REASON]
    assert wire.decode(dlq["data"]).id == poison  # the original bytes, to re-drive after a fix
    assert worker.metrics.dead_letters._value.get() == 1
    result = CliRunner().invoke(cli, ["--db", pg_url, "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dead_letters"] == 1
    wait_for(lambda: consumer_state(nats_server.url) == {"pending": 0, "ack_pending": 0}, "lag 0")


def test_what_can_never_be_stored_is_dead_lettered_at_once(
    nats_server: NatsServer, pg_store: Store, start_worker: StartWorker
) -> None:
    """Undecodable bytes and a conflicting id go to the dead letters on their first delivery; the rest is stored."""
    record = make_record(input="first")
    clash = msgspec.structs.replace(record, input="other")
    publish(
        nats_server.url,
        [
            ("garbage", b"\xc1not msgpack"),
            (record.id, wire.encode(record)),
            (f"{record.id}-again", wire.encode(clash)),  # past the dedup window: same id, other content
        ],
    )
    worker = start_worker(nats_server.url)
    wait_for(lambda: worker.dead_lettered == 2, "two dead letters")
    reasons = sorted(d["headers"][wire.REASON].split(":")[0] for d in dead_letters(nats_server.url))
    assert reasons == ["conflict", "undecodable"]
    assert all(d["headers"][wire.DELIVERIES] == "1" for d in dead_letters(nats_server.url))
    assert pg_store.get(record.id) is not None
    assert len(_ids_in(pg_store, "admin")) == 2
    assert worker.metrics.redeliveries._value.get() == 0


def test_a_record_outside_the_accepted_window_is_dead_lettered(
    nats_server: NatsServer, pg_store: Store, start_worker: StartWorker
) -> None:
    """A producer cannot backdate past what a server accepts: a record 60 days older than its publish is a
    dead letter naming the window; one published now is stored."""
    old = make_record(ts=dt.datetime.now(dt.UTC) - dt.timedelta(days=60))
    ahead = make_record(ts=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    fine = make_record()
    publish(nats_server.url, [(e.id, wire.encode(e)) for e in (old, ahead, fine)])
    worker = start_worker(nats_server.url)
    wait_for(
        lambda: worker.dead_lettered == 2 and pg_store.get(fine.id) is not None,
        "two dead letters, one stored",
    )
    reasons = sorted(d["headers"][wire.REASON] for d in dead_letters(nats_server.url))
    assert [r.split(":")[0] for r in reasons] == ["invalid", "invalid"]
    assert any("older than this server accepts" in r for r in reasons)
    assert any("ahead of the server's clock" in r for r in reasons)
    assert pg_store.get(old.id) is None
    assert pg_store.get(ahead.id) is None


def test_one_signer_among_workers(
    nats_server: NatsServer, pg_url: str, pg_store: Store, tmp_path: Path
) -> None:
    """The advisory lock elects one signer; when it leaves, the other takes over; verify passes."""
    key = tmp_path / "signer.key"
    init_signer(key)
    elections = [
        SignerElection(pg_url, CheckpointCadence(Checkpointer.from_settings(pg_store, key))) for _ in range(2)
    ]
    try:
        for election in elections:
            election.tick()
        assert [e.leader for e in elections] == [True, False]
        _publish_records(nats_server.url, 10)
        worker = Worker(pg_store, wire.NatsTarget.parse(nats_server.url))
        try:
            worker.process(worker._fetch())
        finally:
            worker.close()
        assert elections[1].tick(final=True) is None  # not the signer: signs nothing
        assert elections[0].tick(final=True) is not None
        elections[0].close()
        elections[1].tick()
        assert elections[1].leader
    finally:
        for election in elections:
            election.close()
    sizes = [c.size for c in pg_store.checkpoints()]
    assert sizes == sorted(set(sizes))
    assert sizes[-1] == pg_store.size()
    result = CliRunner().invoke(cli, ["--db", pg_url, "verify", "--key", str(tmp_path / "signer.pub")])
    assert result.exit_code == 0, result.output


def test_metrics_and_health_endpoints(
    nats_server: NatsServer, start_worker: StartWorker, pg_store: Store
) -> None:
    """/metrics exposes lag, batch size, append latency; /healthz is 200 once the worker works; others 404."""
    metrics = WorkerMetrics()
    server = MetricsServer(metrics, "127.0.0.1", free_port())
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz").status_code == 503  # starting
        _publish_records(nats_server.url, 20)
        start_worker(nats_server.url, metrics=metrics)
        wait_for(lambda: pg_store.size() == 20, "20 entries")
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, "healthy")
        text = httpx.get(f"{base}/metrics").text
        for name in (
            "inferlog_worker_consumer_lag", "inferlog_worker_batch_size_count", "inferlog_worker_append_seconds_count",
            "inferlog_worker_redeliveries_total", "inferlog_worker_dead_letters_total",
        ):  # fmt: skip
            assert name in text
        assert 'inferlog_worker_records_total{status="new"} 20.0' in text
        assert httpx.get(f"{base}/nothing").status_code == 404
    finally:
        server.close()


def test_the_cli_refuses_what_it_cannot_run(sqlite_url: str) -> None:
    """No stream named, or a store other than PostgreSQL: one line, exit 1."""
    result = CliRunner().invoke(
        cli, ["worker", "--db", "postgresql://x@127.0.0.1/none"], env={"INFERLOG_NATS": ""}
    )
    assert result.exit_code == 1
    assert "--nats" in result.output
    result = CliRunner().invoke(cli, ["worker", "--nats", "nats://127.0.0.1:4222", "--db", sqlite_url])
    assert result.exit_code == 1
    assert "PostgreSQL" in result.output


def test_a_dead_letter_that_cannot_be_published_is_retried_and_recorded_once(
    nats_server: NatsServer, pg_store: Store, start_worker: StartWorker
) -> None:
    """The dead-letter stream missing: the batch stays unacknowledged, the worker lives; once it is back,
    the message is dead-lettered, and its admin entry is in the log once despite the redeliveries."""
    [good] = _publish_records(nats_server.url, 1)
    worker = start_worker(nats_server.url, options={"ack_wait": 1, "max_deliver": 100})
    wait_for(lambda: pg_store.get(good) is not None, "the worker running")
    delete_stream(nats_server.url, f"{wire.DEFAULT_STREAM}_DEAD")
    publish_raw(nats_server.url, "garbage", b"\xc1")
    wait_for(lambda: worker.metrics.broker_errors._value.get() >= 2, "failed dead-letter publishes")
    assert worker.dead_lettered == 0
    add_stream(nats_server.url, f"{wire.DEFAULT_STREAM}_DEAD", wire.DEFAULT_DEAD_LETTER_SUBJECT)
    wait_for(lambda: worker.dead_lettered == 1, "the dead letter published", seconds=30)
    assert len(_ids_in(pg_store, "admin")) == 1  # recorded once, whatever the number of attempts
    assert worker.metrics.redeliveries._value.get() >= 2
    wait_for(lambda: consumer_state(nats_server.url) == {"pending": 0, "ack_pending": 0}, "lag 0")


def test_a_store_outage_is_not_counted_as_deliveries(
    nats_server: NatsServer, pg_url: str, pg_store: Store, start_worker: StartWorker
) -> None:
    """While appends fail, the worker keeps its batches in hand (+WPI): no redelivery, no dead letter, then all stored."""
    ids = _publish_records(nats_server.url, 40)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("ALTER TABLE inferlog.ledger_state RENAME TO ledger_state_away")  # every append fails
        worker = start_worker(nats_server.url, options={"batch_size": 20, "ack_wait": 1, "max_deliver": 2})
        wait_for(
            lambda: worker.metrics.store_errors._value.get() >= 10,
            "appends failing for several ack_waits",
            seconds=30,
        )
        admin.execute("ALTER TABLE inferlog.ledger_state_away RENAME TO ledger_state")
    wait_for(lambda: pg_store.size() == 40, "everything appended once the store is back", seconds=30)
    assert sorted(_ids_in(pg_store)) == sorted(ids)
    assert worker.dead_lettered == 0
    assert worker.metrics.redeliveries._value.get() == 0  # held for many ack_waits, never redelivered
