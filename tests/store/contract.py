"""The Store contract: behaviours every backend must show. Subclasses provide the ``store`` fixture."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from inferlog.errors import Conflict, UsageError
from inferlog.ledger.merkle import LeafList, root_of
from inferlog.record import FeedbackEntry, Model, uuid7
from inferlog.record.model import AdminEntry, WrappedKey
from inferlog.record.prepared import Prepared
from inferlog.store import (
    ApiKeyStore,
    EntryReader,
    EntryWriter,
    LedgerStore,
    MonitorStore,
    PayloadStore,
    RollupStore,
    Store,
    open_store,
)
from inferlog.store.base import HoldFilter, Purge, Query, Rollup, RollupFilter, RollupKey, RollupState
from inferlog.testing import make_record, prepare
from tests.helpers import inference, present

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _feedback(inference_id: str) -> FeedbackEntry:
    return FeedbackEntry(id=uuid7(), system="test-system", ts=T0, inference_id=inference_id, label=1)


def _with_key(prepared: Prepared, epoch_ref: str = "epoch:test-system:2026-03#1") -> Prepared:
    return prepared._replace(key=WrappedKey(epoch_ref=epoch_ref, subject_ref="subject:s#1", blob=b"k" * 88))


class StoreContract:
    """Run by every backend's test class (TestSQLiteStore, TestPostgresStore, ...).

    ``admin`` is the store as whoever may purge and re-wrap opens it: the same store for SQLite,
    the schema owner for PostgreSQL (whose application role may only append and read).
    """

    @pytest.fixture
    def admin(self, store: Store) -> Store:
        return store

    @pytest.fixture
    def reopen(self, store: Store) -> Iterator[Callable[[], Store]]:
        """Opens another store on ``store``'s database (as another process would), closed after the test."""
        opened: list[Store] = []

        def another() -> Store:
            opened.append(open_store(store.url))
            return opened[-1]

        yield another
        for other in opened:
            other.close()

    def test_every_role_is_there(self, store: Store) -> None:
        """The backend has every role protocol's methods, so any caller may be handed it."""
        roles = (
            EntryWriter,
            EntryReader,
            LedgerStore,
            PayloadStore,
            ApiKeyStore,
            RollupStore,
            MonitorStore,
            Store,
        )
        assert [role.__name__ for role in roles if not isinstance(store, role)] == []

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
        assert inference(got.entry).output == record.output

    def test_an_id_dated_elsewhere_is_still_a_conflict(self, store: Store) -> None:
        """Dedup is by id alone: the same id dated in another month is a conflict, and written once."""
        record = make_record(ts=T0)
        store.append(prepare(record))
        moved = make_record(id=record.id, ts=dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
        results = store.append(prepare(moved, record))
        assert [(r.seq, r.status) for r in results] == [(None, "conflict"), (1, "duplicate")]
        assert store.size() == 1
        assert store.get(record.id).entry.ts == T0  # type: ignore[union-attr]

    def test_failed_batch_writes_nothing_and_leaves_no_gap(self, store: Store) -> None:
        """A batch that fails midway is rolled back whole; the next batch continues seq without a gap."""
        good = prepare(make_record())[0]
        # NOT NULL: the database refuses it mid-batch
        broken = prepare(make_record())[0]._replace(leaf=None)  # type: ignore[arg-type]
        with pytest.raises(Exception):  # noqa: B017, PT011 - any backend error will do
            store.append([good, broken])
        assert store.size() == 0
        assert store.get(good.entry.id) is None
        assert [r.seq for r in store.append(prepare(make_record()))] == [1]

    def test_seq_continues_after_reopen(self, store: Store, reopen: Callable[[], Store]) -> None:
        """A store opened again on the same database continues seq where the first one stopped."""
        store.append(prepare(make_record(), make_record()))
        store.close()
        again = reopen()
        assert [r.seq for r in again.append(prepare(make_record()))] == [3]
        assert again.size() == 3

    def test_two_stores_share_one_gap_free_sequencer(self, store: Store, reopen: Callable[[], Store]) -> None:
        """Two stores on one database (as two processes would have) appending at once get gap-free seqs."""
        other = reopen()
        errors: list[BaseException] = []

        def write(into: Store) -> None:
            try:
                for _ in range(15):
                    into.append(prepare(*[make_record() for _ in range(20)]))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(s,)) for s in (store, other, store)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        entries = store.scan(limit=10_000)
        assert [e.seq for e in entries] == list(range(1, 901))
        assert store.tree().root() == root_of([e.leaf_hash for e in entries])
        assert other.tree().root() == store.tree().root()

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

    def test_attribute_queries_compare_json_values(self, store: Store) -> None:
        """Attribute filters match JSON values as the canonical body holds them: 3 is 3.0, true is not 1, NaN is null."""
        a = make_record(attributes={"n": 3.0, "flag": True, "score": float("nan")})
        b = make_record(attributes={"n": "3", "flag": 1})
        store.append(prepare(a, b))

        def ids(**attributes: Any) -> list[str]:
            return [e.id for e in store.query(Query(attributes=attributes))]

        assert ids(n=3) == [a.id]
        assert ids(n="3") == [b.id]
        assert ids(flag=True) == [a.id]
        assert ids(flag=1) == [b.id]
        assert ids(score="NaN") == []  # NaN is stored as null, as JSON.stringify writes it
        with pytest.raises(UsageError, match="finite"):
            ids(score=float("nan"))

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

    def test_seq_order_is_append_order_whatever_the_dates(self, store: Store) -> None:
        """Entries dated in any order, months and centuries apart, read back in the order they were appended."""
        late_utc = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))  # Feb in UTC
        records = [
            make_record(ts=dt.datetime(2999, 5, 1, tzinfo=dt.UTC)),
            make_record(ts=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)),
            make_record(ts=late_utc),
            make_record(ts=T0),
        ]
        store.append(prepare(*records))
        expected = [r.id for r in records]
        assert [e.id for e in store.scan()] == expected
        assert [e.id for e in store.query(Query())] == expected
        assert [e.id for e in store.query(Query(order="desc"))] == expected[::-1]
        assert [e.id for e in store.query(Query(since=T0 - dt.timedelta(days=30)))] == [
            records[0].id, records[2].id, records[3].id,
        ]  # fmt: skip

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
                store.query(Query(**bad))
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

    # -- payloads: wrapped keys and purges ----------------------------------------------------

    def test_wrapped_keys_are_kept_beside_new_entries_only(self, store: Store, admin: Store) -> None:
        """A prepared entry's key is stored with it; a duplicate does not replace it; rewrap does."""
        first = _with_key(prepare(make_record(ts=T0))[0])
        store.append([first, *prepare(make_record(ts=T0))])
        store.append([_with_key(first, "epoch:other#9")])  # a duplicate: its key is ignored
        keys = store.entry_keys([first.entry.id, uuid7()])
        assert keys == {first.entry.id: first.key}
        assert [i for i, _ in store.keys_wrapped_by("subject:s#1")] == [first.entry.id]
        new = WrappedKey(epoch_ref="epoch:test-system:2026-03#2", subject_ref="subject:s#1", blob=b"n" * 88)
        admin.rewrap([(first.entry.id, new)])
        assert store.entry_keys([first.entry.id]) == {first.entry.id: new}
        assert store.keys_wrapped_by("epoch:test-system:2026-03#1") == []
        many = [_with_key(p, "epoch:paged#1") for p in prepare(*(make_record(ts=T0) for _ in range(5)))]
        store.append(many)
        seen, after = [], ""
        while page := store.keys_wrapped_by("epoch:paged#1", after=after, limit=2):
            assert len(page) <= 2
            seen += [i for i, _ in page]
            after = page[-1][0]
        assert seen == sorted(p.entry.id for p in many)  # one pass, in id order, each once
        got = store.get(first.entry.id)
        assert got is not None
        assert got.body == first.body

    def test_a_repeat_in_one_batch_keeps_the_first_key(self, store: Store) -> None:
        """A sealed entry sent twice in one batch is written once, with the data key of the body that was kept."""
        first = _with_key(prepare(make_record(ts=T0))[0])
        resent = _with_key(first, "epoch:test-system:2026-03#2")  # a resend sealed afresh: another key
        results = store.append([first, resent])
        assert [(r.seq, r.status) for r in results] == [(1, "new"), (1, "duplicate")]
        assert store.entry_keys([first.entry.id]) == {first.entry.id: first.key}

    def test_purge_removes_payloads_and_keys_but_keeps_leaves(self, store: Store, admin: Store) -> None:
        """Old inference and feedback payloads go; admin entries, newer entries and every leaf stay."""
        old = _with_key(prepare(make_record(ts=T0))[0])
        about_old = _feedback(old.entry.id)
        new = make_record(ts=T0 + dt.timedelta(days=40))
        note = AdminEntry(id=uuid7(), system="*", ts=T0, action="policy.changed", details={})
        store.append([old, *prepare(about_old, new, note)])
        root = store.tree().root()
        purge = Purge(system="test-system", before=T0 + dt.timedelta(days=1))
        assert admin.purge(purge, dry_run=True).count == 2
        assert present(store.get(old.entry.id)).body is not None
        result = admin.purge(purge)
        assert (result.count, result.first_seq, result.last_seq) == (2, 1, 2)
        gone = store.get(old.entry.id)
        assert gone is not None
        assert gone.purged
        assert gone.entry.id == old.entry.id
        assert gone.to_dict()["purged"] is True
        assert present(store.get(about_old.id)).purged
        assert not present(store.get(new.id)).purged
        assert not present(store.get(note.id)).purged
        assert store.entry_keys([old.entry.id]) == {}
        assert store.tree().root() == root
        assert [row.body is None for row in store.ledger_rows()] == [True, True, False, False]
        assert admin.purge(purge).count == 0  # nothing left to purge: idempotent

    def test_holds_keep_what_they_cover(self, store: Store, admin: Store) -> None:
        """A hold by subject, by time range or by system keeps those payloads out of a purge."""
        held_subject = make_record(ts=T0, subject="s-held")
        in_range = make_record(ts=T0 + dt.timedelta(hours=5))
        other_system = make_record(ts=T0, system="other")
        free = make_record(ts=T0)
        store.append(prepare(held_subject, in_range, other_system, free))
        keep = (
            HoldFilter(subjects=("s-held",)),
            HoldFilter(since=T0 + dt.timedelta(hours=1), until=T0 + dt.timedelta(hours=6)),
            HoldFilter(system="other"),
        )
        review = _feedback(held_subject.id)  # no subject of its own: held through its inference
        store.append(prepare(review))
        result = admin.purge(Purge(before=T0 + dt.timedelta(days=1), keep=keep))
        assert result.count == 1
        assert not present(store.get(review.id)).purged
        assert [present(store.get(r.id)).purged for r in (held_subject, in_range, other_system, free)] == [
            False, False, False, True,
        ]  # fmt: skip

    def test_purge_by_subject_reaches_their_feedback(self, store: Store, admin: Store) -> None:
        """Erasing a subject purges their inferences and the feedback about them, nobody else's."""
        theirs = make_record(ts=T0, subject="pse_aa")
        raw = make_record(ts=T0, subject="alice")
        someone_else = make_record(ts=T0, subject="bob")
        review = _feedback(theirs.id)
        store.append(prepare(theirs, raw, someone_else, review))
        result = admin.purge(Purge(subjects=("alice", "pse_aa")))
        assert result.count == 3
        assert [present(store.get(e.id)).purged for e in (theirs, raw, someone_else, review)] == [
            True,
            True,
            False,
            True,
        ]

    def test_a_purged_entry_is_no_longer_found_by_its_payload(self, store: Store, admin: Store) -> None:
        """After a purge, attributes and identifiers no longer find an entry; its leaf's metadata still does."""
        record = make_record(
            ts=T0, subject="s-gone", request_id="r-gone", trace_id="t-gone", session_id="se-gone",
            attributes={"region": "eu"},
        )  # fmt: skip
        store.append(prepare(record))
        assert admin.purge(Purge(subjects=("s-gone",))).count == 1
        for filters in (
            {"attributes": {"region": "eu"}},
            {"subject": "s-gone"},
            {"request_id": "r-gone"},
            {"trace_id": "t-gone"},
            {"session_id": "se-gone"},
        ):
            assert store.query(Query(**filters)).entries == [], filters
        assert [e.id for e in store.query(Query(model="test-model", version="1.0.0"))] == [record.id]
        got = store.get(record.id)
        assert got is not None
        assert got.purged
        assert got.entry.model == record.model  # type: ignore[union-attr]  # rebuilt from the leaf
        (row,) = store.ledger_rows()
        assert (row.body, row.salt, row.subject, row.request_id) == (None, None, None, None)

    # -- monitor rollups ----------------------------------------------------------------------

    def test_rollups_are_written_read_and_replaced_with_their_cursor(self, store: Store) -> None:
        """Rollups come back by level, scope and bucket range; a rewrite replaces a row and moves the cursor."""
        assert store.rollup_state() == RollupState()
        rows = [Rollup(60, "s", "m", "1", 60 * n, n, b"d%d" % n) for n in range(5)] + [
            Rollup(3600, "s", "m", "1", 0, 10, b"hour"),
            Rollup(60, "t", "m", "1", 0, 0, b"other"),
        ]
        state = store.put_rollups(rows, expect=RollupState(), cursor=7)
        assert state == RollupState(7, 1) == store.rollup_state()
        got = store.rollups(RollupFilter(60, system="s", since=60, until=240))
        assert [(r.bucket, r.data) for r in got] == [(60, b"d1"), (120, b"d2"), (180, b"d3")]
        assert [r.system for r in store.rollups(RollupFilter(60, with_payloads=True))] == ["s"] * 4
        assert [r.data for r in store.rollups(RollupFilter(3600))] == [b"hour"]
        store.put_rollups(
            [Rollup(60, "s", "m", "1", 60, 9, b"new")],
            expect=state,
            cursor=9,
            drop=[RollupKey(60, "t", "m", "1", 0)],
        )
        found = store.rollups_at([RollupKey(60, "s", "m", "1", 60), RollupKey(60, "t", "m", "1", 0)])
        assert [(r.payloads, r.data) for r in found] == [(9, b"new")]
        assert store.rollup_state() == RollupState(9, 2)

    def test_a_rollup_write_from_a_stale_state_is_refused(self, store: Store) -> None:
        """Two monitors cannot both fold from the same cursor: the second write is a Conflict."""
        state = store.put_rollups([], expect=RollupState(), cursor=3)
        with pytest.raises(Conflict):
            store.put_rollups([Rollup(60, "s", "m", "1", 0, 1, b"x")], expect=RollupState(), cursor=3)
        assert store.rollups(RollupFilter(60)) == []
        store.clear_rollups()
        assert store.rollup_state() == RollupState(0, state.generation + 1)

    def test_monitor_values_are_kept_listed_and_deleted(self, store: Store) -> None:
        """Named values (reference profiles) survive, list by prefix, and go when set to None."""
        store.put_monitor_value("reference:q3", b"\x00profile")
        store.put_monitor_value("reference:q4", b"p4")
        store.put_monitor_value("other", b"o")
        assert store.monitor_value("reference:q3") == b"\x00profile"
        assert store.monitor_values("reference:") == ["reference:q3", "reference:q4"]
        store.put_monitor_value("reference:q3", None)
        assert store.monitor_value("reference:q3") is None
        with pytest.raises(UsageError):
            store.put_monitor_value("state", b"x")

    def test_fold_scan_gives_each_entrys_columns_and_body(self, store: Store, admin: Store) -> None:
        """fold_scan() pages by seq like scan(), with the columns the entry says and its body verbatim."""
        before_1970 = dt.datetime(1969, 12, 31, 23, 59, 58, 250_000, tzinfo=dt.UTC)
        records = [
            make_record(ts=T0 + dt.timedelta(microseconds=123_457), status="error", latency_ms=None),
            make_record(ts=before_1970, subject="alice", model=Model("m", "")),
        ]
        review = _feedback(records[0].id)
        store.append(prepare(*records, review))
        admin.purge(Purge(subjects=("alice",)))
        rows = store.fold_scan(after=0, limit=2) + store.fold_scan(after=2, limit=5)
        stored = store.scan(after=0, limit=5)
        assert [r.seq for r in rows] == [s.seq for s in stored] == [1, 2, 3]
        first, gone, answer = rows
        micros = (T0 - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) + 123_457
        assert first[1:8] == ("inference", "test-system", micros, "test-model", "1.0.0", "error", None)
        body = first.body.encode("utf-8") if isinstance(first.body, str) else first.body
        assert body == stored[0].body
        assert gone[1:7] == ("inference", "test-system", -1_750_000, "m", "", "ok")
        assert gone.body is None
        assert answer.kind == "feedback"
        assert answer.model is None
        assert answer.body is not None

    def test_purged_rows_name_the_buckets_a_purge_reached(self, store: Store, admin: Store) -> None:
        """Purged inferences, and the inferences of purged feedback, in a seq range; nothing unpurged."""
        gone = make_record(ts=T0, subject="alice")
        kept = make_record(ts=T0 + dt.timedelta(minutes=5), subject="bob")
        review = _feedback(kept.id)
        store.append(prepare(gone, kept, review))
        admin.purge(Purge(subjects=("alice",)))
        admin.purge(Purge(before=T0 + dt.timedelta(minutes=1)))  # gone again, and the review
        rows = store.purged_rows(1, store.size())
        assert sorted((r.system, r.ts) for r in rows) == [("test-system", T0), ("test-system", kept.ts)]
        assert store.purged_rows(2, 2) == []
