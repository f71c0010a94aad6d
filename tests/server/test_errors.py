"""The server answers each error of the tree with the status its class names, as one JSON object."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inferlog import errors
from inferlog.errors import BadParameter, InferlogError, RecordInvalid
from inferlog.server import create_app
from inferlog.store.sqlite import SQLiteStore

TREE = sorted(
    (
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, InferlogError)
    ),
    key=lambda kind: kind.__name__,
)


def _raised(kind: type[InferlogError]) -> InferlogError:
    if issubclass(kind, BadParameter):
        return kind("out of range", field="since")
    if issubclass(kind, RecordInvalid):
        return kind("not a number", field="latency_ms", index=2)
    return kind(f"a {kind.__name__} for the test")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """An app with one extra route that raises the error its path names."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'errors.db'}")
    app = create_app(store, auth=False, checkpoint_cadence=False)

    async def boom(name: str) -> None:
        raise _raised(getattr(errors, name))

    app.add_api_route("/test/raise/{name}", boom)
    with TestClient(app) as test_client:
        yield test_client
    store.close()


@pytest.mark.parametrize("kind", TREE, ids=lambda kind: kind.__name__)
def test_each_error_is_answered_with_its_class_status(client: TestClient, kind: type[InferlogError]) -> None:
    """The status is the class's http_status; the body names the class and carries its message (and field)."""
    response = client.get(f"/test/raise/{kind.__name__}")
    assert response.status_code == kind.http_status
    body = response.json()
    assert body["error"] == kind.__name__
    assert body["message"] == str(_raised(kind))
    if issubclass(kind, BadParameter):
        assert body["field"] == "since"
    if issubclass(kind, RecordInvalid):
        assert (body["field"], body["index"]) == ("latency_ms", 2)
    assert ("www-authenticate" in response.headers) == (kind.http_status == 401)


def test_statuses_are_pinned() -> None:
    """Each class answers the status clients know (docs/http-api.md): changing one is an API change, made here."""
    assert {kind.__name__: kind.http_status for kind in TREE} == {
        "AuthError": 401,
        "BadParameter": 422,
        "CheckpointError": 500,
        "Conflict": 409,
        "ContainerError": 500,
        "Forbidden": 403,
        "InferlogError": 500,
        "IntegrityError": 500,
        "KeyDestroyed": 410,
        "ModelConflict": 409,
        "NoteError": 500,
        "NotDurable": 503,
        "NotFound": 404,
        "PayloadTooLarge": 413,
        "ProofError": 500,
        "ProtobufMissing": 422,
        "RecordInvalid": 422,
        "SpanInvalid": 422,
        "SpoolFull": 503,
        "StoreError": 500,
        "StoreUnavailable": 503,
        "UnknownStore": 500,
        "UnsupportedMediaType": 415,
        "UsageError": 400,
    }
