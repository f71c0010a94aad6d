"""After the upgrade to schema v2, a log of v1 entries stays readable, verifiable and exportable, on each backend."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from inferlog.export import get_exporter
from inferlog.integrity.verify import audit
from inferlog.pipeline import body_of
from inferlog.query import iter_entries
from inferlog.query.oversight import periods, verification
from inferlog.record.ids import uuid7
from inferlog.record.model import Biometric, FeedbackEntry, InferenceRecord
from inferlog.record.periods import PERIOD_ENDED, PERIOD_STARTED, period_entry
from inferlog.record.validate import decode_entry, to_entry
from inferlog.store import Store, open_store
from inferlog.store.base import MAX_PAGE, Query
from inferlog.testing import make_record, prepare
from tests.helpers import backend_url
from tests.record.test_schema import TS, V1_FEEDBACK, V1_INFERENCE, biometric


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, tmp_path / "log.db")


@pytest.fixture
def upgraded(url: str) -> Iterator[tuple[Store, InferenceRecord]]:
    """A log with v1 entries (the pinned bodies among them), closed, reopened, then given v2 entries."""
    old = open_store(url)
    old.append(prepare(decode_entry(V1_INFERENCE), decode_entry(V1_FEEDBACK)))
    old.append(prepare(*(make_record(system="border-gate") for _ in range(3))))
    old.close()
    store = open_store(url)
    bio = InferenceRecord(
        id=uuid7(), system="border-gate", ts=TS, model=make_record().model,
        biometric=msgspec.convert(biometric(), Biometric), schema_version=2,
    )  # fmt: skip
    pid = uuid7()
    store.append(
        prepare(
            period_entry(
                id=uuid7(), system="border-gate", ts=TS, action=PERIOD_STARTED, period=pid, purpose="gate A3"
            ),
            bio,
            *(
                FeedbackEntry(
                    id=uuid7(),
                    system="border-gate",
                    ts=TS,
                    inference_id=bio.id,
                    actor=actor,
                    verification="confirmed",
                    schema_version=2,
                )
                for actor in ("officer-1", "officer-2", "officer-1")
            ),
            period_entry(id=uuid7(), system="border-gate", ts=TS, action=PERIOD_ENDED, period=pid),
        )
    )
    yield store, bio
    store.close()


def test_v1_entries_are_read_back_byte_for_byte(upgraded: tuple[Store, InferenceRecord]) -> None:
    """The pinned v1 bodies come back verbatim and as version 1, beside the v2 entries."""
    store, bio = upgraded
    for body in (V1_INFERENCE, V1_FEEDBACK):
        stored = store.get(decode_entry(body).id)
        assert stored is not None
        assert stored.body == body
        assert stored.entry.schema_version == 1
    found = store.get(bio.id)
    assert found is not None
    assert found.entry == bio


def test_the_mixed_log_verifies(upgraded: tuple[Store, InferenceRecord]) -> None:
    """A full audit recomputes every leaf, v1 and v2 alike, and finds no problem."""
    store, _ = upgraded
    report = audit(store)
    assert report.problems == []
    assert report.entries == 11


def test_v1_and_v2_entries_export(upgraded: tuple[Store, InferenceRecord], tmp_path: Path) -> None:
    """JSONL keeps each entry's fields (no schema_version on v1, biometric on v2) and re-imports to the same
    bytes; CSV keeps v2 fields in extra."""
    store, bio = upgraded
    buffer = io.BytesIO()
    assert get_exporter("jsonl").write(iter_entries(store, Query(limit=MAX_PAGE)), buffer) == 11
    lines = {line["id"]: line for line in map(json.loads, buffer.getvalue().splitlines())}
    v1 = lines[decode_entry(V1_INFERENCE).id]
    assert "schema_version" not in v1
    assert v1["model"]["name"] == "face-match"
    assert lines[bio.id]["schema_version"] == 2
    assert lines[bio.id]["biometric"]["reference_database"]["name"] == "watchlist"
    reimported = to_entry(v1)  # what `inferlog import` does with an exported line
    assert body_of(reimported) == V1_INFERENCE
    assert to_entry(lines[bio.id]) == bio
    path = tmp_path / "out.csv"
    get_exporter("csv").write(iter_entries(store, Query(limit=MAX_PAGE)), path)
    with path.open(encoding="utf-8", newline="") as file:
        rows = {row["id"]: row for row in csv.DictReader(file)}
    assert json.loads(rows[bio.id]["extra"])["biometric"]["match"]["candidate"] == "w-1017"
    assert json.loads(rows[bio.id]["extra"])["schema_version"] == 2
    assert rows[decode_entry(V1_INFERENCE).id]["model"] == "face-match"


def test_periods_and_two_person_verification_are_queryable(upgraded: tuple[Store, InferenceRecord]) -> None:
    """The period of use pairs its start and end; the match counts two distinct confirming persons."""
    store, bio = upgraded
    (period,) = periods(store, system="border-gate")
    assert (period.start, period.end, period.purpose) == (TS, TS, "gate A3")
    checked = verification(store, bio.id, system="border-gate")
    assert checked.confirmed_by == ("officer-1", "officer-2")
    assert checked.two_person
    assert not verification(store, decode_entry(V1_INFERENCE).id).two_person
