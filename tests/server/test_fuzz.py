"""Property-based fuzzing of the HTTP API from its own OpenAPI document: no 5xx, no crash.

Derandomized (the same examples every run: a flaky fuzz test is a bug report nobody can reproduce),
and the generated queries and bodies are mixed with nasty values (NUL, 2^63, years 0001 and 9999 at
the zone extremes, long strings, deep nesting, unknown fields). tests/attacks/test_fuzz_deep.py sends
the values no schema would draw (5,000 deep, 10 MB, 1e400) to every route on both backends.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from inferlog.apikeys import create_key
from inferlog.server import create_app
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


NASTY_TEXT = [
    "\x00", "a\x00b", str(2**63), str(2**64), "-1", "9" * 400, "1e400", "NaN",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "999999999d", "k=\x00", "x" * 10_000,
]  # fmt: skip


def _deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


NASTY_VALUES: list[object] = [*NASTY_TEXT, 2**63, -(2**63) - 1, 2**64, _deep(500), {"unknown": _deep(100)}]


@schemathesis.hook
def flatmap_query(ctx: object, query: dict[str, object] | None) -> st.SearchStrategy[object]:
    """Now and then, one generated query parameter replaced by a nasty value."""
    if not query:
        return st.just(query)
    names = sorted(query)
    return st.one_of(
        st.just(query),
        st.tuples(st.sampled_from(names), st.sampled_from(NASTY_TEXT)).map(
            lambda kv: {**query, kv[0]: kv[1]}
        ),
    )


@schemathesis.hook
def flatmap_body(ctx: object, body: object) -> st.SearchStrategy[object]:
    """Now and then, one field of a generated JSON body (or an unknown one) set to a nasty value."""
    items: list[object] = body if isinstance(body, list) else [body]
    records = [item for item in items if isinstance(item, dict)]
    if not items or len(records) < len(items):
        return st.just(body)
    names = sorted({name for item in records for name in item} | {"unknown_field"})

    def spoil(change: tuple[str, object]) -> object:
        spoiled = [{**item, change[0]: change[1]} for item in records]
        return spoiled if isinstance(body, list) else spoiled[0]

    return st.one_of(
        st.just(body), st.tuples(st.sampled_from(names), st.sampled_from(NASTY_VALUES)).map(spoil)
    )


@schema.parametrize()
@settings(max_examples=30, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case[Any]) -> None:  # Any: the operation's own 4 type parameters
    """Whatever the generated request, nasty values included, the server answers it without a 5xx."""
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )
