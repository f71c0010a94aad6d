"""The records API: status codes, idempotency, all-or-nothing batches, role and system scoping, audited reads."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import msgspec

from inferlog.record import uuid7
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import AccessEntry, FeedbackEntry
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import inference, inferences, of_kind
from tests.server.conftest import Server

# Within the window a server accepts (INFERLOG_MAX_RECORD_AGE), and fixed: a retry is byte-identical.
RECENT = format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


def rec(**fields: object) -> dict[str, object]:
    """A record as a producer sends it: with its own id and time, so a retry is byte-identical."""
    return {
        "id": uuid7(),
        "ts": RECENT,
        "model": {"name": "credit-risk", "version": "3.2.1"},
        "input": {"x": 1},
        "output": 0.7,
    } | fields


def test_append_json_array_answers_seqs(server: Server) -> None:
    """A JSON array is appended; each record gets its seq; the key's single system is the default."""
    records = [rec(), rec()]
    r = server.client.post("/v1/records", json=records, headers=server.as_("ingest"))
    assert r.status_code == 200
    assert [(x["id"], x["seq"], x["status"]) for x in r.json()["results"]] == [
        (records[0]["id"], 1, "new"), (records[1]["id"], 2, "new"),
    ]  # fmt: skip
    stored = server.store.get(str(records[0]["id"]))
    assert stored is not None
    assert (stored.entry.system, inference(stored.entry).source) == ("credit", "http")


def test_append_ndjson_and_retry_is_idempotent(server: Server) -> None:
    """An NDJSON batch sent twice is written once; the retry answers 'duplicate' with the same seqs."""
    records = [rec(system="credit") for _ in range(3)]
    body = b"\n".join(msgspec.json.encode(r) for r in records)
    headers = server.as_("ingest") | {"Content-Type": "application/x-ndjson"}
    first = server.client.post("/v1/records", content=body, headers=headers).json()
    again = server.client.post("/v1/records", content=body, headers=headers).json()
    assert [x["seq"] for x in again["results"]] == [x["seq"] for x in first["results"]] == [1, 2, 3]
    assert again["duplicates"] == 3
    assert server.store.size() == 3


def test_bad_record_is_422_naming_field_and_index_and_nothing_is_written(server: Server) -> None:
    """One invalid record refuses the whole batch with its index and field; nothing of it is stored."""
    batch = [rec(), rec(), rec(model={"name": "m", "version": 3})]
    r = server.client.post("/v1/records", json=batch, headers=server.as_("ingest"))
    assert r.status_code == 422
    assert (r.json()["index"], r.json()["field"]) == (2, "model.version")
    assert "record 2, field `model.version`" in r.json()["message"]
    assert server.store.size() == 0


def test_malformed_bodies_are_422(server: Server) -> None:
    """Broken JSON, an empty body and a non-object line are refused with a message, not a 500."""
    for body in (b"[{", b"", b"[1, 2]", b'{"a": 1}\n{broken'):
        r = server.client.post("/v1/records", content=body, headers=server.as_("ingest"))
        assert r.status_code == 422, body
        assert r.json()["message"]


def test_body_over_limit_is_413(server: Server) -> None:
    """A body over the configured limit is refused with 413 before it is parsed."""
    huge = [rec(input="x" * 70_000)]
    r = server.client.post("/v1/records", json=huge, headers=server.as_("ingest"))
    assert r.status_code == 413
    assert server.store.size() == 0


def test_missing_bad_and_revoked_keys_are_401(server: Server) -> None:
    """No key, a malformed key, a wrong secret and a revoked key are all 401."""
    assert server.client.post("/v1/records", json=[rec()]).status_code == 401
    key = server.keys["ingest"]
    mistyped = key[:-1] + ("y" if key.endswith("x") else "x")  # never the key itself
    for token in ("nope", mistyped, key[:20]):
        assert (
            server.client.post("/v1/records", json=[rec()], headers={"X-API-Key": token}).status_code == 401
        )
    kid = server.keys["reader"].split("_")[2]
    assert server.client.delete(f"/v1/keys/{kid}", headers=server.as_("admin")).status_code == 200
    r = server.client.get("/v1/records", params={"purpose": "p"}, headers=server.as_("reader"))
    assert r.status_code == 401
    assert "revoked" in r.json()["message"]


def test_wrong_secret_with_valid_checksum_is_401(server: Server) -> None:
    """A well-formed key whose secret is not the stored one is refused."""
    from inferlog.apikeys import checksum

    env, kid = server.keys["ingest"].split("_")[1:3]
    body = f"ilog_{env}_{kid}_{'A' * 43}"
    r = server.client.post("/v1/records", json=[rec()], headers={"X-API-Key": f"{body}_{checksum(body)}"})
    assert r.status_code == 401


def test_roles_and_systems_are_enforced_with_403(server: Server) -> None:
    """Readers cannot write, ingest keys cannot read, and nobody touches a system outside its key."""
    assert server.client.post("/v1/records", json=[rec()], headers=server.as_("reader")).status_code == 403
    assert (
        server.client.post(
            "/v1/records", json=[rec(system="fraud")], headers=server.as_("ingest")
        ).status_code
        == 403
    )
    r = server.client.post("/v1/records", json=[rec()], headers=server.as_("ingest")).json()
    rid = r["results"][0]["id"]
    assert (
        server.client.get(
            f"/v1/records/{rid}", params={"purpose": "p"}, headers=server.as_("ingest")
        ).status_code
        == 403
    )
    assert (  # another system's id answers like an unknown one: 404, not 403
        server.client.get(
            f"/v1/records/{rid}", params={"purpose": "p"}, headers=server.as_("reader_fraud")
        ).status_code
        == 404
    )
    forged = {"kind": "access", "system": "credit", "action": "get", "purpose": "x"}
    assert server.client.post("/v1/records", json=[forged], headers=server.as_("ingest")).status_code == 403
    assert server.client.get("/v1/keys", headers=server.as_("auditor")).status_code == 403
    assert (
        server.client.get(
            "/v1/records", params={"purpose": "p", "system": "fraud"}, headers=server.as_("reader")
        ).status_code
        == 403
    )


def test_reads_need_a_purpose_and_leave_an_access_entry(server: Server) -> None:
    """Each read states a purpose (422 without) and appends who/what/why/how many to the ledger (R10)."""
    rid = server.client.post("/v1/records", json=[rec()], headers=server.as_("ingest")).json()["results"][0][
        "id"
    ]
    assert server.client.get(f"/v1/records/{rid}", headers=server.as_("reader")).status_code == 422
    r = server.client.get(
        f"/v1/records/{rid}", params={"purpose": "credit appeal #42"}, headers=server.as_("reader")
    )
    assert r.status_code == 200
    assert r.json()["id"] == rid
    page = server.client.get(
        "/v1/records", params={"purpose": "monitoring", "model": "credit-risk"}, headers=server.as_("reader")
    )
    assert len(page.json()["entries"]) == 1
    trail = of_kind(AccessEntry, server.store.query(Query(kind="access")))
    assert [(a.action, a.purpose, a.count) for a in trail] == [
        ("get", "credit appeal #42", 1), ("query", "monitoring", 1),
    ]  # fmt: skip
    assert trail[0].actor is not None
    assert trail[0].actor.startswith("credit analyst")
    assert trail[1].query["model"] == "credit-risk"


def test_reader_sees_own_systems_auditor_sees_access_trail(server: Server) -> None:
    """A reader's queries are limited to its systems and to inference/feedback; an auditor reads the trail."""
    server.client.post(
        "/v1/records", json=[rec(system="credit"), rec(system="fraud")], headers=server.as_("ingest_all")
    )
    reader = server.client.get("/v1/records", params={"purpose": "p"}, headers=server.as_("reader")).json()
    assert [e["system"] for e in reader["entries"]] == ["credit"]
    assert (
        server.client.get(
            "/v1/records", params={"purpose": "p", "kind": "access"}, headers=server.as_("reader")
        ).status_code
        == 403
    )
    trail = server.client.get(
        "/v1/records", params={"purpose": "audit", "kind": "access"}, headers=server.as_("auditor")
    ).json()
    assert [e["purpose"] for e in trail["entries"]] == ["p"]


def test_query_pages_with_cursor(server: Server) -> None:
    """GET /v1/records pages in seq order; following next_cursor reads every entry once."""
    ids = [
        r["id"]
        for r in server.client.post(
            "/v1/records", json=[rec() for _ in range(7)], headers=server.as_("ingest")
        ).json()["results"]
    ]
    seen, cursor = [], 0
    while True:
        page = server.client.get(
            "/v1/records",
            params={"purpose": "p", "limit": 3, "cursor": cursor, "kind": "inference"},
            headers=server.as_("reader"),
        ).json()
        seen += [e["id"] for e in page["entries"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == ids


def test_failed_access_entry_fails_the_read(sqlite_server: Server) -> None:
    """If the access entry cannot be written (store locked), the read fails with 503 and returns nothing."""
    server = sqlite_server
    rid = server.client.post("/v1/records", json=[rec()], headers=server.as_("ingest")).json()["results"][0][
        "id"
    ]
    assert isinstance(server.store, SQLiteStore)
    server.store._timeout = 0.05
    server.store._writer.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(server.store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        r = server.client.get(f"/v1/records/{rid}", params={"purpose": "p"}, headers=server.as_("reader"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert r.status_code == 503
    assert "input" not in r.json()


def test_feedback_links_to_inference(server: Server) -> None:
    """POST feedback records a label for an existing inference; unknown ids are 404."""
    rid = server.client.post("/v1/records", json=[rec()], headers=server.as_("ingest")).json()["results"][0][
        "id"
    ]
    r = server.client.post(
        f"/v1/records/{rid}/feedback", json={"label": 1, "actor": "reviewer-7"}, headers=server.as_("ingest")
    )
    assert r.status_code == 200
    assert r.json()["status"] == "new"
    (fb,) = of_kind(FeedbackEntry, server.store.query(Query(kind="feedback", inference_id=rid)))
    assert (fb.label, fb.actor, fb.system) == (1, "reviewer-7", "credit")
    assert (
        server.client.post(
            f"/v1/records/{uuid7()}/feedback", json={"label": 1}, headers=server.as_("ingest")
        ).status_code
        == 404
    )


def test_get_unknown_is_404(server: Server) -> None:
    """An unknown id is 404 with a message."""
    r = server.client.get(f"/v1/records/{uuid7()}", params={"purpose": "p"}, headers=server.as_("reader"))
    assert r.status_code == 404
    assert "no entry" in r.json()["message"]


def test_stats_health_and_metrics(server: Server) -> None:
    """stats counts within the key's systems; /healthz answers; /metrics counts accepted and rejected."""
    server.client.post("/v1/records", json=[rec(), rec(status="error")], headers=server.as_("ingest"))
    server.client.post("/v1/records", json=[rec(model=None)], headers=server.as_("ingest"))
    stats = server.client.get("/v1/stats", headers=server.as_("reader")).json()
    assert stats["by_status"] == {"ok": 1, "error": 1}
    assert server.client.get("/healthz").json()["status"] == "ok"
    text = server.client.get("/metrics").text
    assert "inferlog_records_accepted_total 2.0" in text
    assert 'inferlog_records_rejected_total{reason="invalid"} 1.0' in text
    assert "inferlog_write_seconds_count 1.0" in text
    assert "inferlog_ingest_backlog 0.0" in text


def test_openapi_documents_the_api(server: Server) -> None:
    """The OpenAPI document lists every route and the records body schema."""
    spec = server.client.get("/openapi.json").json()
    for path in ("/v1/records", "/v1/records/{entry_id}", "/v1/records/{entry_id}/feedback", "/v1/stats",
                 "/v1/checkpoint", "/v1/records/{entry_id}/proof", "/v1/consistency", "/v1/keys", "/healthz", "/metrics"):  # fmt: skip
        assert path in spec["paths"], path
    assert "InferenceRecord" in spec["components"]["schemas"]


def test_complete_ndjson_takes_the_fast_path_with_the_same_results(server: Server) -> None:
    """Complete entries as NDJSON are stored as sent; source is 'http' unless the SDK sent them; a bad line is still named."""
    from inferlog.testing import make_record

    sdk = [make_record(system="credit") for _ in range(3)]
    raw = [make_record(system="credit") for _ in range(2)]
    ndjson = {"Content-Type": "application/x-ndjson"}

    def body(records: list[Any]) -> bytes:
        return b"\n".join(msgspec.json.encode(r) for r in records)

    r = server.client.post(
        "/v1/records",
        content=body(sdk),
        headers=server.as_("ingest") | ndjson | {"User-Agent": "inferlog-sdk"},
    )
    assert r.json()["new"] == 3
    r = server.client.post("/v1/records", content=body(raw), headers=server.as_("ingest") | ndjson)
    assert r.json()["new"] == 2
    sources = {e.id: e.source for e in inferences(server.store.query(Query(kind="inference")))}
    assert [sources[x.id] for x in sdk] == ["sdk"] * 3
    assert [sources[x.id] for x in raw] == ["http"] * 2
    stored = server.store.get(sdk[0].id)
    assert stored is not None
    assert stored.entry == sdk[0]
    bad = body([make_record(system="credit"), make_record(system="credit", latency_ms=-1)])
    r = server.client.post("/v1/records", content=bad, headers=server.as_("ingest") | ndjson)
    assert r.status_code == 422
    assert (r.json()["index"], r.json()["field"]) == (1, "latency_ms")


def test_key_in_the_url_is_refused_outside_the_kserve_sink(server: Server) -> None:
    """A key passed as ?key= is not accepted on ordinary routes (URLs end up in access logs)."""
    r = server.client.post("/v1/records", json=[rec()], params={"key": server.keys["ingest"]})
    assert r.status_code == 401
    assert server.store.size() == 0
