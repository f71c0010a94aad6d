"""``/v1/models``: registering model versions over HTTP, reading them back, and the stats flag."""

from __future__ import annotations

from typing import Any

from inferlog.record.model import AdminEntry
from inferlog.store.base import Query
from tests.helpers import of_kind
from tests.server.conftest import Server
from tests.server.test_records import rec

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def _body(version: str = "1", digest: str = A, **extra: Any) -> dict[str, Any]:
    return {"name": "credit-risk", "version": version, "digest": digest, **extra}


def test_an_admin_registers_and_every_role_reads(server: Server) -> None:
    """An admin's POST is one ``model.registered`` entry by that key; ingest, reader and auditor keys list it."""
    done = server.client.post("/v1/models", json=_body(uri="mlflow://runs/1"), headers=server.as_("admin"))
    assert done.status_code == 201, done.text
    assert done.json()["digest"] == A
    assert done.json()["registered_by"].startswith("ops")
    for role in ("ingest", "reader", "auditor", "admin"):
        listed = server.client.get("/v1/models", headers=server.as_(role))
        assert listed.status_code == 200
        assert [(m["name"], m["version"], m["uri"]) for m in listed.json()] == [
            ("credit-risk", "1", "mlflow://runs/1")
        ]
    (entry,) = of_kind(AdminEntry, server.store.query(Query(kind="admin")))
    assert entry.action == "model.registered"
    assert (entry.actor or "").startswith("ops")


def test_registration_is_refused_clearly(server: Server) -> None:
    """Non-admin keys get 403, a malformed digest 422, another digest for a registered version 409."""
    for role in ("ingest", "reader", "auditor"):
        assert server.client.post("/v1/models", json=_body(), headers=server.as_(role)).status_code == 403
    bad = server.client.post("/v1/models", json=_body(digest="sha256:xyz"), headers=server.as_("admin"))
    assert bad.status_code == 422
    assert server.client.post("/v1/models", json=_body(), headers=server.as_("admin")).status_code == 201
    conflict = server.client.post("/v1/models", json=_body(digest=B), headers=server.as_("admin"))
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "ModelConflict"
    assert "new version" in conflict.json()["message"]


def test_stats_flag_the_unregistered_model_versions(server: Server) -> None:
    """Stats name the model versions in records that are not registered; registering one clears it."""
    sent = server.client.post("/v1/records", json=[rec(), rec()], headers=server.as_("ingest"))
    assert sent.status_code == 200, sent.text
    stats = server.client.get("/v1/stats", headers=server.as_("reader")).json()
    pairs = {(m["model"], m["version"]) for m in stats["models"]}
    assert {(m["model"], m["version"]) for m in stats["unregistered"]} == pairs
    for name, version in pairs:
        body = {"name": name, "version": version, "digest": A}
        assert server.client.post("/v1/models", json=body, headers=server.as_("admin")).status_code == 201
    assert server.client.get("/v1/stats", headers=server.as_("reader")).json()["unregistered"] == []


SCHEMA: dict[str, Any] = {"inputs": [{"name": "age", "datatype": "INT64"}], "outputs": [{"name": "score"}]}


def test_schemas_over_http(server: Server) -> None:
    """POST /v1/models with a schema, and /v1/models/schemas, record it once; GET shows it, a change flagged."""
    done = server.client.post("/v1/models", json=_body(schema=SCHEMA), headers=server.as_("admin"))
    assert done.status_code == 201, done.text
    assert done.json()["schema"]["inputs"] == SCHEMA["inputs"]
    same = server.client.post(
        "/v1/models/schemas",
        json={"name": "credit-risk", "version": "1", "schema": SCHEMA},
        headers=server.as_("admin"),
    )
    assert same.status_code == 201, same.text
    assert same.json()["entry_id"] == done.json()["schema"]["entry_id"]
    assert len(of_kind(AdminEntry, server.store.query(Query(kind="admin")))) == 2
    (listed,) = server.client.get("/v1/models", headers=server.as_("reader")).json()
    assert (listed["schema"]["source"], listed["schema"]["changed"]) == ("user", False)
    other = {"inputs": [{"name": "age", "datatype": "FP64"}]}
    body = {"name": "credit-risk", "version": "1", "schema": other}
    assert server.client.post("/v1/models/schemas", json=body, headers=server.as_("admin")).status_code == 201
    (schema,) = server.client.get("/v1/models/schemas", headers=server.as_("ingest")).json()
    assert (schema["changed"], schema["inputs"]) == (True, other["inputs"])


def test_bad_schemas_are_refused_over_http(server: Server) -> None:
    """A schema without a field name is 422 naming it (nothing registered); a non-admin key is 403."""
    bad = {"inputs": [{"datatype": "FP64"}]}
    refused = server.client.post("/v1/models", json=_body(schema=bad), headers=server.as_("admin"))
    assert refused.status_code == 422
    assert "schema.inputs[0].name" in refused.text
    assert server.client.get("/v1/models", headers=server.as_("admin")).json() == []
    body = {"name": "credit-risk", "version": "1", "schema": SCHEMA}
    assert (
        server.client.post("/v1/models/schemas", json=body, headers=server.as_("ingest")).status_code == 403
    )
    body["source"] = "guess"
    assert server.client.post("/v1/models/schemas", json=body, headers=server.as_("admin")).status_code == 422


_SCHEMA = '{"inputs": [{"name": "x"}], "outputs": [{"name": "y"}]}'
_HOSTILE = {
    "a lone surrogate in the card": '{"name": "m", "version": "1", "digest": "%s", "card": {"ref": "\\ud800"}}',
    "a lone surrogate in the schema": '{"name": "m", "version": "1", "digest": "%s", "schema": {"inputs": [{"name": "\\udc00"}]}}',
    "an unknown field": '{"name": "m", "version": "1", "digest": "%s", "uri_typo": "s3://x"}',
    "1e400 in the card": '{"name": "m", "version": "1", "digest": "%s", "card": {"bytes": 1e400}}',
    "1e400 in the schema": '{"name": "m", "version": "1", "digest": "%s", "schema": {"inputs": [{"name": "x", "shape": [1e400]}]}}',
    "a card nested 100 deep": '{"name": "m", "version": "1", "digest": "%s", "card": '
    + '{"a":' * 100
    + "1"
    + "}" * 100
    + "}",
    "a card nested 50000 deep": '{"name": "m", "version": "1", "digest": "%s", "card": '
    + "[" * 30_000
    + "]" * 30_000
    + "}",
    "not an object": "[%r]",
    "a card that is a string": '{"name": "m", "version": "1", "digest": "%s", "card": "text"}',
}


def test_hostile_registrations_are_422_and_write_nothing(server: Server) -> None:
    """Lone surrogates, unknown fields, 1e400, deep nesting, wrong shapes: 422 with a message, nothing written."""
    for case, template in _HOSTILE.items():
        body = (template % A).encode()
        for path in ("/v1/models", "/v1/models/schemas"):  # /schemas has no card: an unknown field there
            if path.endswith("schemas"):
                body = body.replace(
                    b'"digest": "' + A.encode() + b'", ', b'"schema": ' + _SCHEMA.encode() + b", "
                )
            done = server.client.post(
                path, content=body, headers={**server.as_("admin"), "Content-Type": "application/json"}
            )
            assert done.status_code == 422, (case, path, done.text)
            assert done.json()["message"], case
    assert list(server.store.query(Query(kind="admin"))) == []


def test_an_unknown_field_is_named(server: Server) -> None:
    """A misspelt field is refused naming it, rather than silently dropping what it carried."""
    done = server.client.post("/v1/models", json=_body(urii="s3://x"), headers=server.as_("admin"))
    assert done.status_code == 422
    assert "urii" in done.json()["message"]


def test_a_body_over_the_limit_is_413(server: Server) -> None:
    """A registration body over the server's body limit (64 KiB here) is 413 before it is parsed."""
    big = _body(card={"text": "x" * 100_000})
    done = server.client.post("/v1/models", json=big, headers=server.as_("admin"))
    assert done.status_code == 413
    assert list(server.store.query(Query(kind="admin"))) == []


def test_a_card_with_large_numbers_is_stored_as_sent(server: Server) -> None:
    """A card's numbers come back as they were sent (no float rounding a big integer)."""
    card = {"sha256": "0" * 64, "bytes": 2**62 + 1, "ref": "card.md"}
    done = server.client.post("/v1/models", json=_body(card=card), headers=server.as_("admin"))
    assert done.status_code == 201, done.text
    (listed,) = server.client.get("/v1/models", headers=server.as_("admin")).json()
    assert listed["card"] == card
