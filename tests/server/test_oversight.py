"""Schema v2 and periods of use over HTTP: biometric records, verifications, periods, refusals naming fields."""

from __future__ import annotations

from typing import Any

from inferlog.record import uuid7
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
