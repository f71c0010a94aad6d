"""The SDK's schema v2 fields and periods of use: ``record(biometric=...)``, verifications, ``log.period()``."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import inferlog
from inferlog.errors import RecordInvalid, UsageError
from inferlog.query.oversight import periods, verification
from inferlog.record.model import AdminEntry, Biometric, InferenceRecord
from inferlog.record.validate import check_entry
from inferlog.sdk.client import Log
from inferlog.store import open_store
from inferlog.store.base import Query
from tests.fix_server import ServerProcess, run_cli
from tests.record.test_schema import biometric


def test_record_with_biometric_is_a_v2_entry(log: Log, model: inferlog.Model) -> None:
    """``record(biometric=...)`` stores every Art. 12(3) field, stamped schema v2."""
    rid = log.record(
        model=model, input={"probe": "sha256:" + "cd" * 32}, output={"match": True}, biometric=biometric()
    )
    got = log.get(rid)
    assert got is not None
    assert isinstance(got.entry, InferenceRecord)
    assert got.entry.schema_version == 2
    assert got.entry.biometric is not None
    assert got.entry.biometric.reference_database.version == "2026-04-30"
    assert got.entry.biometric.match == {"candidate": "w-1017", "probe": "sha256:" + "cd" * 32}


def test_a_bad_biometric_is_refused_at_the_call(log: Log, model: inferlog.Model) -> None:
    """A use that ends before it starts is refused by ``record()`` naming the field, before anything is spooled."""
    bad = biometric(period={"start": "2026-05-01T10:00:00Z", "end": "2026-05-01T09:00:00Z"})
    with pytest.raises(RecordInvalid) as info:
        log.record(model=model, biometric=bad)
    assert info.value.field == "biometric.period.end"
    assert log.counters.spooled == 0


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [65, 5000])
@pytest.mark.parametrize("as_struct", [False, True])
def test_a_biometric_match_nested_past_the_limit_is_refused_at_the_call(
    log: Log, model: inferlog.Model, depth: int, as_struct: bool
) -> None:
    """``biometric.match`` is free-form like ``input``: nested past 64 levels it is refused naming the
    field (not a RecursionError, not a record the pipeline refuses later), as a mapping or a Biometric."""
    value = biometric(match=_nested(depth))
    given = msgspec.convert(value, Biometric) if as_struct else value
    with pytest.raises(RecordInvalid) as info:
        log.record(model=model, biometric=given)
    assert info.value.field == "biometric.match"
    assert log.counters.spooled == 0


def test_the_pipeline_refuses_a_biometric_match_nested_past_the_limit() -> None:
    """Every way in meets the same limit: an entry built in code with a deep match is refused by check_entry."""
    entry = msgspec.convert(
        {"kind": "inference", "id": "0190d6a2-7c2e-7000-8000-000000000001", "system": "s",
         "ts": "2026-05-01T09:30:00Z", "model": {"name": "m", "version": "1"}},
        InferenceRecord,
    )  # fmt: skip
    use = msgspec.structs.replace(msgspec.convert(biometric(), Biometric), match=_nested(70))
    deep = msgspec.structs.replace(entry, biometric=use)
    with pytest.raises(RecordInvalid) as info:
        check_entry(deep)
    assert info.value.field == "biometric.match"


def test_verifications_by_two_distinct_persons(log: Log, model: inferlog.Model) -> None:
    """Verifications are feedback with distinct actors; one person twice is not two persons."""
    rid = log.record(model=model, biometric=biometric())
    with pytest.raises(RecordInvalid) as info:
        log.feedback(rid, verification="confirmed")
    assert info.value.field == "actor"
    log.feedback(rid, verification="confirmed", actor="officer-1")
    log.feedback(rid, verification="confirmed", actor="officer-1")
    assert log.flush(timeout=10)
    assert log.store is not None
    assert not verification(log.store, rid).two_person
    log.feedback(rid, verification="confirmed", actor="officer-2")
    assert log.flush(timeout=10)
    assert verification(log.store, rid).two_person
    log.feedback(rid, verification="rejected", actor="officer-3")
    assert log.flush(timeout=10)
    assert not verification(log.store, rid).two_person


def test_period_writes_start_and_end_even_when_the_block_raises(log: Log, model: inferlog.Model) -> None:
    """``with log.period()`` writes both entries, the end also when the block fails; a period is entered once."""
    with log.period(purpose="gate A3", actor="operator-7") as first:
        log.record(model=model)
    with pytest.raises(ZeroDivisionError), log.period(purpose="gate B1") as second:
        _ = 1 / 0
    with pytest.raises(UsageError), first:
        pass
    assert log.flush(timeout=10)
    assert log.store is not None
    found = {p.id: p for p in periods(log.store, system="test-system")}
    assert set(found) == {first.id, second.id}
    assert (found[first.id].start, found[first.id].end) == (first.start, first.end)
    assert (found[first.id].purpose, found[first.id].actor) == ("gate A3", "operator-7")
    assert not found[second.id].open


def test_period_ships_over_http(server_process: ServerProcess, tmp_path: Path) -> None:
    """Through a real server, an ingest key's period entries are accepted and stored as admin entries."""
    ingest = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "ingest", "--system", "gate", "--name", "g"
    ).strip()
    log = inferlog.open(server_process.url, api_key=ingest, system="gate", spool_dir=tmp_path / "spool")
    with log.period(purpose="gate A3"):
        log.record(model=inferlog.Model("face-match", "3.1"), biometric=biometric())
    assert log.flush(timeout=30)
    assert log.counters.shipped == 3
    log.close()
    store = open_store(server_process.db)
    try:
        actions = [
            e.entry.action
            for e in store.query(Query(kind="admin")).entries
            if isinstance(e.entry, AdminEntry)
        ]
        assert actions.count("period.started") == actions.count("period.ended") == 1
        (period,) = periods(store, system="gate")
        assert period.purpose == "gate A3"
    finally:
        store.close()
