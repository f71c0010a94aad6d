"""Schema v2 and periods of use over HTTP: biometric records, verifications, periods, refusals naming fields."""

from __future__ import annotations

import datetime as dt
from typing import Any

from inferlog.record import uuid7
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import AccessEntry
from inferlog.store.base import Query
from tests.record.test_schema import biometric
from tests.server.conftest import Server
from tests.server.test_records import RECENT, rec

PURPOSE = {"purpose": "oversight"}


def _period(action: str, period: str, **details: Any) -> dict[str, Any]:
    return {
        "kind": "admin",
        "id": uuid7(),
        "ts": RECENT,
        "action": action,
        "details": {"period": period} | details,
    }


def test_an_unknown_field_is_422_naming_it_and_nothing_is_written(server: Server) -> None:
    """A record with a field the schema does not name is refused whole, naming the field and index."""
    r = server.client.post("/v1/records", json=[rec(), rec(biometrics={})], headers=server.as_("ingest"))
    assert r.status_code == 422
    assert "biometrics" in r.text
    assert server.store.query(Query(kind="inference")).entries == []


def test_a_biometric_record_round_trips_as_v2(server: Server) -> None:
    """A record with ``biometric`` is stored as schema v2 and read back with every field."""
    record = rec(biometric=biometric())
    r = server.client.post("/v1/records", json=[record], headers=server.as_("ingest"))
    assert r.status_code == 200, r.text
    got = server.client.get(f"/v1/records/{record['id']}", params=PURPOSE, headers=server.as_("reader"))
    assert got.json()["schema_version"] == 2
    assert got.json()["biometric"]["reference_database"]["digest"] == "sha256:" + "ef" * 32
    bad = rec(biometric=biometric(period={"start": RECENT, "end": "2000-01-01T00:00:00Z"}))
    refused = server.client.post("/v1/records", json=[bad], headers=server.as_("ingest"))
    assert refused.status_code == 422
    assert "biometric.period.end" in refused.text


def test_two_person_verification_counts_distinct_actors(server: Server) -> None:
    """Two confirmations by one person are not two persons; a second person makes it two_person."""
    record = rec(biometric=biometric())
    server.client.post("/v1/records", json=[record], headers=server.as_("ingest"))
    url = f"/v1/records/{record['id']}/feedback"
    no_actor = server.client.post(url, json={"verification": "confirmed"}, headers=server.as_("ingest"))
    assert no_actor.status_code == 422
    assert "actor" in no_actor.text
    for actor in ("officer-1", "officer-1"):
        posted = server.client.post(
            url, json={"verification": "confirmed", "actor": actor}, headers=server.as_("ingest")
        )
        assert posted.status_code == 200, posted.text
    check = f"/v1/records/{record['id']}/verification"
    first = server.client.get(check, params=PURPOSE, headers=server.as_("reader")).json()
    assert (first["confirmed_by"], first["two_person"]) == (["officer-1"], False)
    server.client.post(
        url, json={"verification": "confirmed", "actor": "officer-2"}, headers=server.as_("ingest")
    )
    second = server.client.get(check, params=PURPOSE, headers=server.as_("reader")).json()
    assert (second["confirmed_by"], second["two_person"]) == (["officer-1", "officer-2"], True)
    other = server.client.get(check, params=PURPOSE, headers=server.as_("reader_fraud"))
    assert other.status_code == 404


def test_periods_are_written_as_records_and_read_back(server: Server) -> None:
    """An ingest key posts a period's start and end; ``GET /v1/periods`` pairs them; other admin entries stay refused."""
    pid = uuid7()
    started = server.client.post(
        "/v1/records", json=[_period("period.started", pid, purpose="gate A3")], headers=server.as_("ingest")
    )
    assert started.status_code == 200, started.text
    server.client.post("/v1/records", json=[_period("period.ended", pid)], headers=server.as_("ingest"))
    got = server.client.get(
        "/v1/periods", params=PURPOSE | {"system": "credit"}, headers=server.as_("reader")
    )
    assert got.status_code == 200, got.text
    (period,) = got.json()["periods"]
    assert (period["id"], period["purpose"], period["open"], period["start"]) == (
        pid,
        "gate A3",
        False,
        RECENT,
    )
    trail = server.store.query(Query(kind="access")).entries[-1].entry
    assert isinstance(trail, AccessEntry)
    assert trail.action == "periods"
    forged = {"kind": "admin", "ts": RECENT, "action": "retention.applied"}
    assert server.client.post("/v1/records", json=[forged], headers=server.as_("ingest")).status_code == 403
    no_id = server.client.post(
        "/v1/records", json=[_period("period.started", "gate-a3")], headers=server.as_("ingest")
    )
    assert no_id.status_code == 422
    assert "details.period" in no_id.text


def test_biometric_uses_list_by_database_and_unverified(server: Server) -> None:
    """``GET /v1/biometric`` lists uses with their verifiers, filtered by database and by lack of two persons."""
    verified, pending = rec(biometric=biometric()), rec(biometric=biometric())
    other = rec(biometric=biometric(reference_database={"name": "visa-photos"}, match=None))
    server.client.post("/v1/records", json=[verified, pending, other, rec()], headers=server.as_("ingest"))
    for actor in ("officer-1", "officer-2"):
        server.client.post(
            f"/v1/records/{verified['id']}/feedback",
            json={"verification": "confirmed", "actor": actor},
            headers=server.as_("ingest"),
        )
    every = server.client.get("/v1/biometric", params=PURPOSE, headers=server.as_("reader")).json()["uses"]
    assert {u["id"] for u in every} == {verified["id"], pending["id"], other["id"]}
    watch = server.client.get(
        "/v1/biometric", params=PURPOSE | {"database": "watchlist"}, headers=server.as_("reader")
    ).json()["uses"]
    assert {u["id"] for u in watch} == {verified["id"], pending["id"]}
    (open_match,) = server.client.get(
        "/v1/biometric", params=PURPOSE | {"unverified": "true"}, headers=server.as_("reader")
    ).json()["uses"]
    assert (open_match["id"], open_match["matched"], open_match["two_person"]) == (pending["id"], True, False)
    elsewhere = server.client.get("/v1/biometric", params=PURPOSE, headers=server.as_("reader_fraud"))
    assert elsewhere.json()["uses"] == []


_BASE = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)


def _t(minutes: int) -> str:
    """A time ``minutes`` after a base three hours ago (inside the accepted window)."""
    return format_timestamp(_BASE + dt.timedelta(minutes=minutes))


def _at(ts: str, action: str, period: str, system: str | None = None) -> dict[str, Any]:
    entry = _period(action, period) | {"ts": ts}
    return entry | ({"system": system} if system else {})


def test_another_system_cannot_end_a_period(server: Server) -> None:
    """Periods pair by (system, id): an end written under another system with the same id ends nothing of this one."""
    pid = uuid7()
    start = _at(_t(60), "period.started", pid, "credit")
    assert server.client.post("/v1/records", json=[start], headers=server.as_("ingest")).status_code == 200
    forged = _at(_t(120), "period.ended", pid, "fraud")
    assert (
        server.client.post("/v1/records", json=[forged], headers=server.as_("ingest_all")).status_code == 200
    )
    got = server.client.get("/v1/periods", params=PURPOSE, headers=server.as_("auditor")).json()["periods"]
    by_system = {p["system"]: p for p in got}
    assert by_system["credit"]["open"] is True
    assert by_system["credit"]["end"] is None
    assert by_system["fraud"]["start"] is None


def test_an_end_before_its_start_is_refused(server: Server) -> None:
    """A period.ended before its period.started (in the log, or earlier in the same batch) is 422 naming both times."""
    pid = uuid7()
    start = _at(_t(60), "period.started", pid)
    assert server.client.post("/v1/records", json=[start], headers=server.as_("ingest")).status_code == 200
    early = _at(_t(0), "period.ended", pid)
    refused = server.client.post("/v1/records", json=[early], headers=server.as_("ingest"))
    assert refused.status_code == 422, refused.text
    assert "before it started" in refused.json()["message"]
    other = uuid7()
    batch = [_at(_t(60), "period.started", other), _at(_t(59), "period.ended", other)]
    assert server.client.post("/v1/records", json=batch, headers=server.as_("ingest")).status_code == 422
    late = _at(_t(90), "period.ended", pid)
    assert server.client.post("/v1/records", json=[late], headers=server.as_("ingest")).status_code == 200
    (period,) = server.client.get("/v1/periods", params=PURPOSE, headers=server.as_("reader")).json()[
        "periods"
    ]
    assert (period["start"], period["end"]) == (_t(60), _t(90))
