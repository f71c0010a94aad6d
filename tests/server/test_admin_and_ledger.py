"""Keys over HTTP, and proofs over HTTP that verify against the signed checkpoint."""

from __future__ import annotations

import base64

from inferlog.ledger.checkpoint import open_checkpoint
from inferlog.ledger.hashing import leaf_hash
from inferlog.ledger.merkle import verify_consistency, verify_inclusion
from inferlog.record.model import AdminEntry
from inferlog.store.base import Query
from tests.helpers import of_kind
from tests.server.conftest import Server
from tests.server.test_records import rec


def test_admin_creates_lists_and_revokes_keys(server: Server) -> None:
    """An admin makes a key (shown once, works at once), lists keys without secrets, revokes it; each is an admin entry."""
    r = server.client.post(
        "/v1/keys", json={"role": "reader", "systems": ["credit"], "name": "bi"}, headers=server.as_("admin")
    )
    assert r.status_code == 201
    token, kid = r.json()["key"], r.json()["kid"]
    assert server.client.get("/v1/stats", headers={"X-API-Key": token}).status_code == 200
    listed = server.client.get("/v1/keys", headers=server.as_("admin")).json()
    assert kid in [k["kid"] for k in listed]
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert server.client.delete(f"/v1/keys/{kid}", headers=server.as_("admin")).status_code == 200
    assert server.client.delete(f"/v1/keys/{kid}", headers=server.as_("admin")).status_code == 404
    assert server.client.get("/v1/stats", headers={"X-API-Key": token}).status_code == 401
    actions = [e.action for e in of_kind(AdminEntry, server.store.query(Query(kind="admin")))]
    assert actions == ["key.created", "key.revoked"]
    bad = server.client.post(
        "/v1/keys", json={"role": "god", "systems": ["x"], "name": "n"}, headers=server.as_("admin")
    )
    assert bad.status_code == 422


def test_proofs_over_http_verify_against_the_signed_checkpoint(server: Server) -> None:
    """GET proof and consistency give hashes that verify under the signed checkpoint's root."""
    ids = [
        x["id"]
        for x in server.client.post(
            "/v1/records", json=[rec() for _ in range(20)], headers=server.as_("ingest")
        ).json()["results"]
    ]
    assert server.client.get("/v1/checkpoint", headers=server.as_("auditor")).status_code == 404
    first = server.client.post("/v1/checkpoint", headers=server.as_("auditor")).text
    server.client.post("/v1/records", json=[rec() for _ in range(13)], headers=server.as_("ingest"))
    assert server.client.post("/v1/checkpoint", headers=server.as_("reader")).status_code == 403
    second = server.client.post("/v1/checkpoint", headers=server.as_("admin")).text
    assert server.client.get("/v1/checkpoint", headers=server.as_("reader")).text == second
    old = open_checkpoint(first.encode(), server.verifiers)
    new = open_checkpoint(second.encode(), server.verifiers)
    assert (old.size, new.size) == (20, 33)

    proof = server.client.get(f"/v1/records/{ids[7]}/proof", headers=server.as_("reader")).json()
    assert (proof["seq"], proof["tree_size"], proof["checkpoint"]) == (8, 33, second)
    leaf = base64.b64decode(proof["leaf"])
    verify_inclusion(7, 33, leaf_hash(leaf), [base64.b64decode(h) for h in proof["proof"]], new.root)

    cons = server.client.get(
        "/v1/consistency", params={"first": 20, "second": 33}, headers=server.as_("auditor")
    ).json()
    verify_consistency(20, 33, old.root, new.root, [base64.b64decode(h) for h in cons["proof"]])
    assert (
        server.client.get(
            "/v1/consistency", params={"first": 40, "second": 33}, headers=server.as_("auditor")
        ).status_code
        == 400
    )
    assert (  # another system's id looks like an unknown one
        server.client.get(f"/v1/records/{ids[0]}/proof", headers=server.as_("reader_fraud")).status_code
        == 404
    )
