"""The Store contract: behaviours every backend must show. Subclasses provide the ``store`` fixture."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from inferlog.errors import UsageError
from inferlog.ledger.merkle import LeafList, root_of
from inferlog.record import FeedbackEntry, Model, uuid7
from inferlog.store.base import Query, Store
from inferlog.testing import make_record, prepare

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _feedback(inference_id: str) -> FeedbackEntry:
    return FeedbackEntry(id=uuid7(), system="test-system", ts=T0, inference_id=inference_id, label=1)


class StoreContract:
    """Run by every backend's test class (TestSQLiteStore, TestPostgresStore, ...)."""

    def test_seq_is_gap_free_from_one_across_batches(self, store: Store) -> None:
        """New entries get seq 1, 2, 3 ... in batch order, continuing across batches."""
        first = store.append(prepare(make_record(), make_record()))
        second = store.append(prepare(make_record()))
        assert [r.seq for r in first + second] == [1, 2, 3]
        assert all(r.status == "new" for r in first + second)
        assert store.size() == 3

    def test_body_and_leaf_are_kept_verbatim(self, store: Store) -> None:
        """What get() returns has the exact canonical body, leaf and leaf hash that were appended."""
        prepared = prepare(make_record(input={"ü": [1.5, None, True]}))[0]
        store.append([prepared])
        got = store.get(prepared.entry.id)
        assert got is not None
        assert (got.body, got.leaf, got.leaf_hash) == (
            prepared.body,
            prepared.leaf,
            prepared.leaf_hash,
        )
        assert got.entry == prepared.entry
        assert got.logged_at.tzinfo is not None

    def test_duplicate_keeps_first_seq_and_is_not_written_twice(self, store: Store) -> None:
        """Re-appending an id with the same body answers 'duplicate' with the original seq."""
        record = make_record()
        store.append(prepare(record))
        again = store.append(prepare(record))
        assert [(r.seq, r.status) for r in again] == [(1, "duplicate")]
        assert store.size() == 1

    def test_duplicate_inside_one_batch(self, store: Store) -> None:
        """The same record twice in one batch is written once."""
        record = make_record()
        results = store.append(prepare(record, record))
        assert [(r.seq, r.status) for r in results] == [(1, "new"), (1, "duplicate")]
        assert store.size() == 1

    def test_conflicting_duplicate_is_refused(self, store: Store) -> None:
        """An existing id with a different body is a conflict and changes nothing."""
        record = make_record()
        store.append(prepare(record))
        forged = make_record(id=record.id, output={"label": "no"})
        results = store.append(prepare(forged, make_record()))
        assert results[0].status == "conflict"
        assert results[0].seq is None
        assert results[1].seq == 2
        got = store.get(record.id)
        assert got is not None
        assert got.entry.output == record.output

    def test_failed_batch_writes_nothing_and_leaves_no_gap(self, store: Store) -> None:
        """A batch that fails midway is rolled back whole; the next batch continues seq without a gap."""
        good = prepare(make_record())[0]
        broken = prepare(make_record())[0]._replace(leaf=None)  # NOT NULL: the database refuses it mid-batch
        with pytest.raises(Exception):  # noqa: B017, PT011 - any backend error will do
            store.append([good, broken])
        assert store.size() == 0
        assert store.get(good.entry.id) is None
        assert [r.seq for r in store.append(prepare(make_record()))] == [1]

    def test_get_unknown_is_none(self, store: Store) -> None:
        """An id that was never appended reads as None."""
        assert store.get(uuid7()) is None

    def test_query_filters(self, store: Store) -> None:
        """Each filter selects exactly the entries it names."""
        a = make_record(
            model=Model("a", "1"), ts=T0, subject="s1", request_id="r1", attributes={"region": "eu"}
        )
        b = make_record(
            model=Model("a", "2"), ts=T0 + dt.timedelta(hours=1), status="error", trace_id="t1",
            attributes={"region": "us", "n": 3},
        )  # fmt: skip
        c = make_record(model=Model("b", "1"), ts=T0 + dt.timedelta(hours=2), system="other", session_id="x")
        fb = _feedback(a.id)
        store.append(prepare(a, b, c))
        store.append(prepare(fb))

        def ids(**filters: object) -> list[str]:
            return [e.id for e in store.query(Query(**filters))]  # type: ignore[arg-type]

        assert ids(model="a") == [a.id, b.id]
        assert ids(model="a", version="2") == [b.id]
        assert ids(status="error") == [b.id]
        assert ids(system="other") == [c.id]
        assert ids(subject="s1") == [a.id]
        assert ids(request_id="r1") == [a.id]
        assert ids(trace_id="t1") == [b.id]
        assert ids(session_id="x") == [c.id]
        assert ids(kind="feedback") == [fb.id]
        assert ids(inference_id=a.id) == [fb.id]
        assert ids(since=T0 + dt.timedelta(minutes=30), kind="inference") == [b.id, c.id]
        assert ids(until=T0 + dt.timedelta(minutes=30), kind="inference") == [a.id]
        assert ids(attributes={"region": "eu"}) == [a.id]
        assert ids(attributes={"region": "us", "n": 3}) == [b.id]
        assert ids(attributes={"region": "mars"}) == []

    def test_pages_in_seq_order_both_ways(self, store: Store) -> None:
        """Following next_cursor reads every entry once, ascending or descending."""
        records = [make_record() for _ in range(25)]
        store.append(prepare(*records))
        for order, expected in (("asc", records), ("desc", records[::-1])):
            seen: list[str] = []
            cursor = 0
            while True:
                page = store.query(Query(limit=10, after=cursor, order=order))  # type: ignore[arg-type]
                seen += [e.id for e in page]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == [r.id for r in expected]

    def test_incremental_reader_misses_nothing_under_concurrent_writes(self, store: Store) -> None:
        """A reader following the seq cursor while another thread writes sees each entry exactly once (R7)."""
        total, batch = 600, 20
        written: list[str] = []
        done = threading.Event()

        def writer() -> None:
            for _ in range(total // batch):
                records = [make_record() for _ in range(batch)]
                store.append(prepare(*records))
                written.extend(r.id for r in records)
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        seen: list[str] = []
        cursor = 0
        while True:
            finished = done.is_set()
            page = store.query(Query(after=cursor, limit=50))
            seen += [e.id for e in page]
            if page.entries:
                cursor = page.entries[-1].seq
            elif finished:
                break
        thread.join()
        assert seen == written
        assert len(set(seen)) == total

    def test_scan_reads_everything_in_order(self, store: Store) -> None:
        """scan() pages through all entries by seq, unfiltered."""
        store.append(prepare(*[make_record() for _ in range(7)]))
        first = store.scan(after=0, limit=4)
        rest = store.scan(after=first[-1].seq, limit=4)
        assert [e.seq for e in first + rest] == list(range(1, 8))

    def test_stats_counts(self, store: Store) -> None:
        """stats() counts entries by kind, status, system and model, with latency percentiles."""
        ok = [make_record(latency_ms=float(i)) for i in range(1, 11)]
        bad = make_record(status="error", latency_ms=100.0)
        store.append(prepare(*ok, bad))
        store.append(prepare(_feedback(bad.id)))
        stats = store.stats()
        assert stats["entries"] == 12
        assert stats["by_kind"] == {"inference": 11, "feedback": 1}
        assert stats["by_status"] == {"ok": 10, "error": 1}
        assert stats["models"] == [{"model": "test-model", "version": "1.0.0", "count": 11, "errors": 1}]
        assert stats["latency_ms"]["p50"] == 6.0
        assert stats["latency_ms"]["p99"] == 100.0
        filtered = store.stats(Query(status="error"))
        assert filtered["entries"] == 1

    def test_bad_queries_are_refused(self, store: Store) -> None:
        """Nonsense filters raise UsageError before reaching the database."""
        for bad in ({"limit": 0}, {"order": "sideways"}, {"kind": "x"}, {"attributes": {"a'b": 1}}):
            with pytest.raises(UsageError):
                store.query(Query(**bad))  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            Query(since=dt.datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose

    def test_tree_tracks_every_leaf_in_seq_order(self, store: Store) -> None:
        """The stored compact range is the RFC 6962 tree over all leaf hashes in seq order, tiles included."""
        for size in (1, 7, 300, 30):  # crosses a 256-leaf tile boundary mid-batch
            store.append(prepare(*[make_record() for _ in range(size)]))
        hashes = [e.leaf_hash for e in store.scan(limit=10_000)]
        tree = store.tree()
        assert tree.size == len(hashes) == 338
        assert tree.root() == root_of(hashes)
        assert store.leaf_hashes(5, 9) == hashes[5:9]
        assert store.tile_hashes(8, 0, 5) == [LeafList(hashes).perfect(8, 0)]

    def test_duplicates_do_not_grow_the_tree(self, store: Store) -> None:
        """Only new entries become leaves: a replayed batch leaves the tree as it was."""
        records = [make_record() for _ in range(3)]
        store.append(prepare(*records))
        before = store.tree().root()
        store.append(prepare(*records))
        assert store.tree().size == 3
        assert store.tree().root() == before

    def test_checkpoints_are_kept_once_per_size(self, store: Store) -> None:
        """add_checkpoint is idempotent by size and checkpoints() lists them by size."""
        store.append(prepare(make_record()))
        root = store.tree().root()
        store.add_checkpoint(1, root, b"note-1\n")
        store.add_checkpoint(1, root, b"note-1 again\n")
        store.add_checkpoint(0, b"\0" * 32, b"note-0\n")
        kept = store.checkpoints()
        assert [(c.size, c.note) for c in kept] == [(0, b"note-0\n"), (1, b"note-1\n")]
        assert kept[1].root == root

    def test_api_keys_round_trip_and_revoke(self, store: Store) -> None:
        """API keys are kept with their role and systems, listed, and revoked once."""
        from inferlog.store.base import ApiKey

        key = ApiKey("k1", b"\x01" * 32, "reader", ("credit", "fraud"), "dashboard", T0)
        store.put_api_key(key)
        store.put_api_key(ApiKey("k2", b"\x02" * 32, "admin", ("*",), "ops", T0 + dt.timedelta(seconds=1)))
        assert store.get_api_key("k1") == key
        assert [k.kid for k in store.api_keys()] == ["k1", "k2"]
        assert store.revoke_api_key("k1", T0 + dt.timedelta(days=1))
        assert not store.revoke_api_key("k1", T0 + dt.timedelta(days=2))
        assert not store.revoke_api_key("nope", T0)
        revoked = store.get_api_key("k1")
        assert revoked is not None
        assert revoked.revoked_at == T0 + dt.timedelta(days=1)
        assert store.get_api_key("missing") is None

    def test_scope_filters_systems_and_kinds(self, store: Store) -> None:
        """systems= and kinds= restrict to any of several values (how keys and roles scope reads)."""
        a, b, c = (make_record(system=s) for s in ("credit", "fraud", "hr"))
        store.append(prepare(a, b, c, _feedback(a.id)))
        assert [e.id for e in store.query(Query(systems=("credit", "hr"), kinds=("inference",)))] == [
            a.id,
            c.id,
        ]
        assert len(store.query(Query(systems=("*",)))) == 4
        assert store.stats(Query(systems=("fraud",)))["entries"] == 1
