"""``inferlog.lineage``: the model registry kept in the log, and the cached copy capture paths attach from."""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferlog.errors import ModelConflict, RecordInvalid, StoreUnavailable
from inferlog.lineage import (
    CARD_INLINE_BYTES,
    MODEL_REGISTERED,
    ModelRegistry,
    Registration,
    StoreRegistrations,
    card_of,
    register_model,
    registered_models,
    unregistered,
)
from inferlog.model_schemas import record_schema
from inferlog.record.model import AdminEntry, Model
from inferlog.store import Store, open_store
from inferlog.store.base import Query
from tests.helpers import backend_store

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh log on each backend."""
    opened = backend_store(request, tmp_path / "log.db")
    yield opened
    opened.close()


def test_a_registration_round_trips_as_an_admin_entry(store: Store) -> None:
    """A registration is one ``model.registered`` admin entry by the actor, and reads back as registered."""
    card = card_of(b"# fraud model\nTrained on 2026 data.", "card.md")
    made = register_model(store, "fraud", "1.2", digest=A, uri="mlflow://runs/7", card=card, actor="ops")
    (stored,) = store.query(Query(kind="admin"))
    entry = stored.entry
    assert isinstance(entry, AdminEntry)
    assert (entry.action, entry.actor, entry.system) == (MODEL_REGISTERED, "ops", "*")
    assert entry.details["card"]["text"] == "# fraud model\nTrained on 2026 data."
    (read,) = registered_models(store)
    assert (read.name, read.version, read.digest, read.uri) == ("fraud", "1.2", A, "mlflow://runs/7")
    assert read.card == card
    assert (read.actor, read.entry_id) == ("ops", made.entry_id)


def test_the_latest_registration_of_a_version_wins(store: Store) -> None:
    """Registering a version again with the same digest records the new URI; other versions stay listed."""
    register_model(store, "fraud", "1", digest=A, uri="old", actor="ops")
    register_model(store, "fraud", "2", digest=B, actor="ops")
    register_model(store, "fraud", "1", digest=A, uri="new", actor="ops")
    assert [(r.version, r.uri) for r in registered_models(store)] == [("1", "new"), ("2", None)]


def test_another_digest_for_a_registered_version_is_refused(store: Store) -> None:
    """A version names one artifact: the same version with another digest is a ModelConflict, and nothing is written."""
    register_model(store, "fraud", "1", digest=A, actor="ops")
    with pytest.raises(ModelConflict, match="register this one as a new version"):
        register_model(store, "fraud", "1", digest=B, actor="ops")
    assert store.size() == 1


@pytest.mark.parametrize(
    ("version", "digest", "field"),
    [("1", "sha256:abc", "digest"), ("v" * 257, A, "version"), ("1", "md5:" + "a" * 32, "digest"), ("1", A.upper(), "digest"),
     ("unversioned", A, "version"), ("", A, "version")],
)  # fmt: skip
def test_bad_registrations_are_refused(store: Store, version: str, digest: str, field: str) -> None:
    """A malformed digest or a missing version is refused, naming the field, and nothing is written."""
    with pytest.raises(RecordInvalid) as raised:
        register_model(store, "fraud", version, digest=digest, actor="ops")
    assert raised.value.field == field
    assert store.size() == 0


def test_names_and_uris_are_bounded_as_in_records(store: Store) -> None:
    """A name over 256 characters or a URI over 4096 is refused before anything is written."""
    with pytest.raises(RecordInvalid) as raised:
        register_model(store, "n" * 257, "1", digest=A, actor="ops")
    assert raised.value.field == "name"
    with pytest.raises(RecordInvalid) as raised:
        register_model(store, "fraud", "1", digest=A, uri="u" * 4097, actor="ops")
    assert raised.value.field == "uri"
    assert store.size() == 0


def test_a_large_or_binary_card_is_kept_by_hash_and_reference() -> None:
    """A card over the inline limit, or not UTF-8, keeps its SHA-256, size and reference but no text."""
    big = card_of(b"x" * (CARD_INLINE_BYTES + 1), "card.md")
    assert set(big) == {"sha256", "bytes", "ref"}
    assert big["bytes"] == CARD_INLINE_BYTES + 1
    assert "text" not in card_of(b"\xff\xfe", "card.bin")
    assert card_of(b"x", "a")["sha256"] != card_of(b"y", "a")["sha256"]


def test_unregistered_names_the_model_versions_missing_from_the_registry() -> None:
    """Stats rows whose (model, version) is not registered are named, ``unversioned`` ones included."""
    rows = [
        {"model": "fraud", "version": "1", "count": 3, "errors": 0},
        {"model": "fraud", "version": "2", "count": 1, "errors": 0},
        {"model": "LogisticRegression", "version": "unversioned", "count": 5, "errors": 0},
    ]
    registrations = [Registration("fraud", "1", A)]
    assert [(r["model"], r["version"]) for r in unregistered(rows, registrations)] == [
        ("fraud", "2"),
        ("LogisticRegression", "unversioned"),
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_registry_copy_loads_rarely_and_picks_up_new_versions() -> None:
    """Known models are served from memory; an unknown one reloads at most every ``unknown_interval``."""
    loads: list[float] = []
    known = [Registration("fraud", "1", A, "uri:1")]
    clock = Clock()

    def load() -> list[Registration]:
        loads.append(clock.now)
        return list(known)

    # background=False: the reloads run on this thread, so the schedule can be read off ``loads``.
    registry = ModelRegistry(load, refresh_interval=30.0, unknown_interval=1.0, clock=clock, background=False)
    for _ in range(100):
        assert registry.attach(Model("fraud", "1")) == Model("fraud", "1", A, "uri:1")
        assert registry.attach(Model("fraud", "2")) == Model("fraud", "2")
    assert loads == [0.0], "one load for 200 lookups within the interval"
    known.append(Registration("fraud", "2", B))
    clock.now = 1.5
    assert registry.attach(Model("fraud", "2")) == Model("fraud", "2", B)
    assert loads == [0.0, 1.5]
    clock.now = 2.0
    registry.remember(Registration("fraud", "3", "sha256:" + "c" * 64))
    assert registry.attach(Model("fraud", "3")).digest == "sha256:" + "c" * 64
    assert loads == [0.0, 1.5], "a registration made through this process needs no reload"


def test_attach_keeps_what_the_producer_sent_and_maps_a_digest_to_its_version() -> None:
    """A digest or URI the record carries is kept; an unversioned model is named by its registered digest."""
    registry = ModelRegistry(lambda: [Registration("fraud", "1", A, "uri:1")], background=False)
    assert registry.attach(Model("fraud", "1", B)) == Model("fraud", "1", B, "uri:1")
    assert registry.attach(Model("fraud", "1", None, "mine")) == Model("fraud", "1", A, "mine")
    wrapped = Model("LogisticRegression", "unversioned", A, None, "sklearn")
    assert registry.attach(wrapped) == Model("fraud", "1", A, "uri:1", "sklearn")
    other = Model("LogisticRegression", "unversioned", B, None, "sklearn")
    assert registry.attach(other) is other


def test_a_registry_that_cannot_load_never_fails_a_record(caplog: pytest.LogCaptureFixture) -> None:
    """A load failure on the capture path leaves the model as it was, is logged, and is retried only after the full interval."""
    calls: list[int] = []

    def broken() -> list[Registration]:
        calls.append(1)
        raise StoreUnavailable("the store is down")

    clock = Clock()
    registry = ModelRegistry(
        broken, refresh_interval=30.0, unknown_interval=1.0, clock=clock, background=False
    )
    for _ in range(10):
        assert registry.attach(Model("fraud", "1")) == Model("fraud", "1")
    clock.now = 5.0  # past unknown_interval: a failed registry still waits the full refresh_interval
    assert registry.attach(Model("fraud", "1")) == Model("fraud", "1")
    assert len(calls) == 1
    clock.now = 31.0
    registry.attach(Model("fraud", "1"))
    assert len(calls) == 2
    assert "could not read the model registry" in caplog.text
    with pytest.raises(StoreUnavailable):
        registry.refresh()


def test_store_registrations_read_only_what_was_appended_since(store: Store) -> None:
    """The capture paths' loader reads new admin entries only, and still sees the latest registration of each."""
    loader = StoreRegistrations(store)
    register_model(store, "fraud", "1", digest=A, uri="old", actor="ops")
    assert [(r.version, r.uri) for r in loader()] == [("1", "old")]
    first_cursor = loader.after
    assert first_cursor > 0
    register_model(store, "fraud", "1", digest=A, uri="new", actor="ops")
    register_model(store, "fraud", "2", digest=B, actor="ops")
    assert [(r.version, r.uri) for r in loader()] == [("1", "new"), ("2", None)]
    assert loader.after > first_cursor
    assert loader() == registered_models(store)


def test_no_load_ever_holds_up_the_caller_not_even_the_first() -> None:
    """The first lookup and later ones start the load in a background thread and answer from the copy they have."""
    release = [threading.Event(), threading.Event()]
    loads: list[str] = []
    clock = Clock()

    def slow() -> list[Registration]:
        loads.append(threading.current_thread().name)
        assert release[len(loads) - 1].wait(30), "the test never released the load"
        if len(loads) > 1:
            return [Registration("fraud", "1", A), Registration("fraud", "2", B)]
        return [Registration("fraud", "1", A)]

    registry = ModelRegistry(slow, refresh_interval=30.0, unknown_interval=1.0, clock=clock)
    assert registry.attach(Model("fraud", "1")) == Model("fraud", "1")  # answered while the first load waits
    assert registry.attach(Model("fraud", "1")) == Model("fraud", "1")  # and no second load starts
    assert not registry.wait_loaded(0.01)
    release[0].set()
    assert registry.wait_loaded(10)
    assert registry.attach(Model("fraud", "1")).digest == A
    clock.now = 2.0
    assert registry.attach(Model("fraud", "2")) == Model("fraud", "2")  # answered while the reload waits
    assert registry.attach(Model("fraud", "2")) == Model("fraud", "2")
    release[1].set()
    assert registry._reloader is not None
    registry._reloader.join(10)
    assert loads == ["inferlog-lineage", "inferlog-lineage"]
    assert registry.attach(Model("fraud", "2")).digest == B


def test_an_unknown_model_reloads_less_and_less_often() -> None:
    """A model nobody registers reloads after 1, 2, 4 ... s, capped at refresh_interval; a new registration starts over."""
    loads: list[float] = []
    known = [Registration("fraud", "1", A)]
    clock = Clock()

    def load() -> list[Registration]:
        loads.append(clock.now)
        return list(known)

    registry = ModelRegistry(load, refresh_interval=30.0, unknown_interval=1.0, clock=clock, background=False)
    while clock.now < 200:
        registry.attach(Model("ghost", "1"))
        clock.now += 0.5
    gaps = [b - a for a, b in itertools.pairwise(loads)]
    assert gaps[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert set(gaps[5:]) == {30.0}, "never more often than refresh_interval once it stays unknown"
    assert len(loads) < 15  # a reload a second would be 200
    known.append(Registration("fraud", "2", B))
    clock.now += 30.0
    assert registry.attach(Model("fraud", "2")).digest == B  # the reload that brings something new ...
    start = len(loads)
    clock.now += 1.0
    registry.attach(Model("ghost", "1"))
    assert len(loads) == start + 1  # ... starts the unknown wait over at unknown_interval


def test_a_registration_remembered_during_a_load_is_not_lost_by_it() -> None:
    """A load that read the store before a registration was remembered keeps that registration."""
    registry = ModelRegistry(list, background=False)
    registry.remember(Registration("fraud", "1", A, ts=dt.datetime.now(dt.UTC), entry_id="e1"))
    registry.refresh()  # read before the registration reached the store
    assert registry.attach(Model("fraud", "1")).digest == A


def test_a_forked_child_looks_up_although_a_parent_thread_held_the_registry_lock() -> None:
    """A child forked while a parent thread was reading the registry gets fresh locks, not a deadlock."""
    registry = ModelRegistry(lambda: [Registration("fraud", "1", A)], background=False)
    registry.attach(Model("fraud", "1"))
    registry._lock.acquire()  # as a parent thread would hold it at the moment of fork()
    try:
        pid = os.fork()
        if pid == 0:  # the child: must not hang on the lock its parent's thread held
            code = 2
            try:
                if registry._lock.acquire(timeout=10):
                    registry._lock.release()
                    code = 0 if registry.attach(Model("fraud", "1")).digest == A else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        registry._lock.release()
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_registry_whose_source_answers_garbage_never_fails_a_record() -> None:
    """A source that raises something other than an inferlog error (a server answering HTML) leaves the model as it was."""

    def garbage() -> list[Registration]:
        raise ValueError("Expecting value: line 1 column 1 (char 0)")

    registry = ModelRegistry(garbage, background=False)
    for _ in range(3):
        assert registry.attach(Model("fraud", "1")) == Model("fraud", "1")


def test_racing_registrations_of_one_version_write_one_digest(store: Store) -> None:
    """Writers racing to register one version with different digests (each its own connection, as
    processes would be): exactly one wins, the others hear ModelConflict, the log holds one digest."""
    writers = 4
    handles = [open_store(store.url) for _ in range(writers)]
    versions = [str(v) for v in range(8)]
    barrier = threading.Barrier(writers)
    won: list[tuple[str, str]] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def write(index: int) -> None:
        digest = "sha256:" + f"{index:x}" * 64
        for version in versions:
            barrier.wait(30)
            try:
                register_model(handles[index], "race", version, digest=digest, actor=f"w{index}")
                won.append((version, digest))
            except ModelConflict:
                refused.append(version)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for handle in handles:
        handle.close()
    assert errors == []
    assert sorted(v for v, _ in won) == versions, "one winner per version"
    assert len(refused) == len(versions) * (writers - 1)
    entries = [
        s.entry
        for s in store.query(Query(kind="admin", system="*", limit=1000))
        if isinstance(s.entry, AdminEntry) and s.entry.action == MODEL_REGISTERED
    ]
    assert len(entries) == len(versions), "no version got a second digest"
    assert {(e.details["version"], e.details["digest"]) for e in entries} == set(won)


def test_registering_reads_only_what_was_appended_since(store: Store) -> None:
    """A registration reads the admin entries appended since the store's last read, not the whole admin log."""
    read_after: list[int] = []
    real_query = store.query

    class Counting:
        """The store, noting where each admin query starts (the store itself answers)."""

        url = store.url

        def query(self, query: Query) -> Any:
            read_after.append(query.after)
            return real_query(query)

        def append(self, batch: Any) -> Any:
            return store.append(batch)

    counting = Counting()
    for version in range(5):
        register_model(counting, "fraud", str(version), digest=A, actor="ops")  # type: ignore[arg-type]
    assert read_after == [0, 0, 1, 2, 3], "each read starts where the last one ended"
    assert [r.version for r in registered_models(counting)] == [str(v) for v in range(5)]  # type: ignore[arg-type]
    assert read_after[-1] == 4


def test_a_registration_and_a_schema_check_the_model_alike(store: Store) -> None:
    """One check of a model's (name, version) for registrations and schemas: a NUL (which PostgreSQL
    cannot keep) or an over-long name is refused naming the field, by both, with nothing written."""
    schema = {"inputs": [{"name": "x"}], "outputs": []}
    for name, version, field in (
        ("a\x00b", "1", "name"),
        ("m", "1\x00", "version"),
        ("m" * 257, "1", "name"),
    ):
        with pytest.raises(RecordInvalid) as registering:
            register_model(store, name, version, digest=A, actor="ops")
        with pytest.raises(RecordInvalid) as describing:
            record_schema(store, name, version, schema, source="user", actor="ops")
        assert registering.value.field == describing.value.field == field
    assert list(store.query(Query(kind="admin", limit=10))) == []


def test_the_shared_registrations_reader_does_not_keep_a_store_alive(tmp_path: Path) -> None:
    """The per-store reader GET /v1/models and register_model share goes away with its store."""
    opened = open_store(f"sqlite:///{tmp_path / 'gone.db'}")
    register_model(opened, "fraud", "1", digest=A, actor="ops")
    assert [r.version for r in registered_models(opened)] == ["1"]
    gone = weakref.ref(opened)
    opened.close()
    del opened
    gc.collect()
    assert gone() is None
