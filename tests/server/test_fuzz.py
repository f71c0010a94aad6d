"""Property-based fuzzing of the HTTP API from its own OpenAPI document: no 5xx, no crash."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from inferlog.server import create_app
from inferlog.server.auth import create_key
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record, prepare


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: object, value: object) -> bytes:
    """Generated NDJSON bodies: whatever string hypothesis made, as UTF-8 (surrogates escaped)."""
    return str(value).encode("utf-8", "surrogatepass")


_folder = Path(tempfile.mkdtemp(prefix="inferlog-fuzz-"))
atexit.register(shutil.rmtree, _folder, True)
_store = SQLiteStore(f"sqlite:///{_folder / 'fuzz.db'}")
_store.append(prepare(*[make_record(system="fuzz") for _ in range(5)]))
_app = create_app(_store, auth=False, max_body_bytes=256 * 1024)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)
create_key(_store, "admin", ["*"], "fuzz")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    """Whatever the generated request, the server answers it without a 5xx (503 aside: that is the store's word)."""
    response = case.call()
    assert response.status_code < 500 or response.status_code == 503, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )
