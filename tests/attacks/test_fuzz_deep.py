"""Deep and huge values against every route, on both backends: never a 5xx.

The schema-driven fuzzing (tests/server/test_fuzz.py) draws small values; the values that broke
inferlog were not small. Here a fixed corpus goes everywhere a value can go — every query and path
parameter of every route in the OpenAPI document, every field of every body, the sinks' headers —
and each answer must be a 2xx or a 4xx: nesting 5,000 deep, 10 MB strings in bodies (1 MB in URLs,
past what any HTTP server lets through), 1e400, NUL, lone surrogates, years 0001 and 9999 at the
zone extremes, cursors and ids at 2^63 and 2^64, and fields nobody declared.

Then hypothesis properties of the query parameter parsing: whatever the text, the parsers answer a
value or a UsageError (HTTP 4xx), nothing else, and what they accept means what it says.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferlog.errors import UsageError
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer
from inferlog.query.filters import build_query, parse_attribute, parse_since
from inferlog.record.canonical import format_timestamp
from inferlog.record.ids import uuid7
from inferlog.server import create_app
from inferlog.store import Store
from inferlog.store.base import MAX_SEQ, Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record, prepare
from tests.helpers import backend_store

DEEP = 5000
BIG_BODY = 10 * 1024 * 1024
BIG_URL = 60_000  # just under the 64 KiB httpx lets through (HTTP servers stop at 8 KiB or so)

# Raw JSON values, as bytes: the encoders of Python cannot even build some of them (1e400, 5,000 deep).
JSON_VALUES: dict[str, bytes] = {
    "deep list": b"[" * DEEP + b"]" * DEEP,
    "deep object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "2^63": str(2**63).encode(),
    "-2^63-1": str(-(2**63) - 1).encode(),
    "2^64": str(2**64).encode(),
    "NUL": b'"a\\u0000b"',
    "lone surrogate": b'"\\ud800"',
    "year 0001 +14:00": b'"0001-01-01T00:00:00+14:00"',
    "year 9999 -14:00": b'"9999-12-31T23:59:59-14:00"',
    "year 0001": b'"0001-01-01T00:00:00Z"',
    "empty": b'""',
    "null": b"null",
    "object": b'{"unknown": [1, 2, {"x": null}]}',
}
HUGE_JSON = b'"' + b"x" * BIG_BODY + b'"'

# Query and path parameter values, as text.
TEXT_VALUES: dict[str, str] = {
    "empty": "",
    "NUL": "a\x00b",
    "only NUL": "\x00",
    "1e400": "1e400",
    "NaN": "NaN",
    "-1": "-1",
    "2^63": str(2**63),
    "-2^63-1": str(-(2**63) - 1),
    "2^64": str(2**64),
    "400 digits": "9" * 400,
    "year 0001 +14:00": "0001-01-01T00:00:00+14:00",
    "year 9999 -14:00": "9999-12-31T23:59:59-14:00",
    "999999999d": "999999999d",
    "10^25 s": "10000000000000000000000000s",
    "attr-like": "k=v=w",
    "attr NUL": "k=\x00",
    "path-like": "../../etc/passwd",
    "60 KB": "x" * BIG_URL,
}

# One valid value per field of each body, so one nasty value at a time reaches what checks it.
RECORD = {
    "id": None, "ts": None, "system": "fuzz", "model": {"name": "m", "version": "1"}, "input": {"x": 1},
    "output": 1, "latency_ms": 1.5, "attributes": {"a": 1}, "subject": "s", "request_id": "r",
    "status": "ok", "parameters": {"t": 0.1}, "kind": "inference",
}  # fmt: skip
FEEDBACK = {"label": 1, "outcome": "ok", "override": None, "comment": "c", "actor": "a", "attributes": {}}
KEY = {"role": "reader", "systems": ["fuzz"], "name": "n"}


@dataclass
class Target:
    client: TestClient
    store: Store
    entry_id: str


def _app(store: Store, tmp_path: Path) -> Iterator[Target]:
    stored = store.append(prepare(*[make_record(system="fuzz") for _ in range(3)]))
    signer = init_signer(tmp_path / "signer.key", origin="fuzz.test/log")
    checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, tmp_path / "signer.key"))
    checkpointer.checkpoint()
    app = create_app(store, auth=False, max_body_bytes=BIG_BODY + 1024 * 1024, checkpointer=checkpointer)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Target(client, store, stored[0].id)
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """The API with no auth (every route reachable), a 11 MB body limit, over each backend."""
    yield from _app(backend_store(request, tmp_path / "fuzz.db"), tmp_path)


def _now() -> str:
    return format_timestamp(dt.datetime.now(dt.UTC))


def _with(template: dict[str, Any], field: str, raw: bytes) -> bytes:
    """``template`` as JSON with ``field`` set to the raw JSON text ``raw`` (spliced, never parsed)."""
    marker = "__RAW__"
    body = {k: v for k, v in template.items() if v is not None} | {field: marker}
    return json.dumps(body).encode().replace(f'"{marker}"'.encode(), raw)


def _record() -> dict[str, Any]:
    return RECORD | {"id": uuid7(), "ts": _now()}


class Failures:
    """Every 5xx seen, kept to report them all at once."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def check(self, what: str, response: Any) -> None:
        if response.status_code >= 500:
            self.seen.append(f"{what} -> {response.status_code}: {response.text[:200]}")

    def assert_none(self) -> None:
        assert not self.seen, f"{len(self.seen)} request(s) answered 5xx:\n" + "\n".join(self.seen)


def _operations(client: TestClient) -> list[tuple[str, str, list[dict[str, Any]]]]:
    schema = client.get("/openapi.json").json()
    return [
        (method.upper(), path, op.get("parameters", []))
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    ]


def _fill(path: str, entry_id: str, value: str | None = None, name: str | None = None) -> str:
    for param in ("entry_id", "kid"):
        text = value if name == param and value is not None else (entry_id if param == "entry_id" else "k")
        path = path.replace("{" + param + "}", quote(text, safe=""))
    return path


def test_every_parameter_of_every_route_takes_nasty_values_without_a_5xx(target: Target) -> None:
    """Each query and path parameter of each route, given each nasty text value, answers 2xx or 4xx."""
    failures = Failures()
    for method, path, params in _operations(target.client):
        if method == "DELETE":
            continue  # revoking keys: exercised below with its own values
        base = {"purpose": "fuzz"} if any(p["name"] == "purpose" for p in params) else {}
        for param in params:
            for label, value in TEXT_VALUES.items():
                if param["in"] == "path":
                    url, query = _fill(path, target.entry_id, value, param["name"]), base
                else:
                    url, query = _fill(path, target.entry_id), base | {param["name"]: value}
                body = b"[]" if method == "POST" else None
                response = target.client.request(method, url, params=query, content=body)
                failures.check(f"{method} {path} {param['name']}={label}", response)
    for label, value in TEXT_VALUES.items():
        response = target.client.delete(_fill("/v1/keys/{kid}", target.entry_id, value, "kid"))
        failures.check(f"DELETE /v1/keys/{{kid}} kid={label}", response)
    failures.assert_none()


DEEP_VALUES = ("deep list", "deep object")


def test_every_body_field_takes_nasty_values_without_a_5xx(target: Target) -> None:
    """Each field of each JSON body (records, feedback, keys), given each nasty JSON value, answers 2xx or 4xx."""
    _post_nasty_bodies(target, [label for label in JSON_VALUES if label not in DEEP_VALUES])


def test_every_body_field_nested_5000_deep_without_a_5xx(target: Target) -> None:
    """Each field of each JSON body, nested 5,000 deep (a list, an object), answers 2xx or 4xx (413/422)."""
    _post_nasty_bodies(target, list(DEEP_VALUES))


def _post_nasty_bodies(target: Target, labels: list[str]) -> None:
    failures = Failures()
    posts = [
        ("/v1/records", _record, [*RECORD, "unknown_field"], "application/json"),
        (f"/v1/records/{target.entry_id}/feedback", lambda: dict(FEEDBACK) | {"ts": _now()},
         [*FEEDBACK, "ts", "id", "unknown_field"], "application/json"),
        ("/v1/keys", lambda: dict(KEY), [*KEY, "unknown_field"], "application/json"),
    ]  # fmt: skip
    for url, make, fields, content_type in posts:
        for field in fields:
            for label in labels:
                body = _with(make(), field, JSON_VALUES[label])
                if url == "/v1/records":
                    for wrapped, kind in ((b"[" + body + b"]", content_type), (body, "application/x-ndjson")):
                        response = target.client.post(url, content=wrapped, headers={"Content-Type": kind})
                        failures.check(f"POST {url} ({kind}) {field}={label}", response)
                else:
                    response = target.client.post(url, content=body, headers={"Content-Type": content_type})
                    failures.check(f"POST {url} {field}={label}", response)
    failures.assert_none()


def test_ten_megabyte_strings_in_bodies_without_a_5xx(target: Target) -> None:
    """A 10 MB string in the fields that take text, and as a whole body, answers 2xx or 4xx (413 at most)."""
    failures = Failures()
    for field in ("input", "subject", "system", "ts", "id", "unknown_field"):
        body = b"[" + _with(_record(), field, HUGE_JSON) + b"]"
        failures.check(f"POST /v1/records {field}=10MB", target.client.post("/v1/records", content=body))
    feedback = _with(dict(FEEDBACK), "comment", HUGE_JSON)
    url = f"/v1/records/{target.entry_id}/feedback"
    failures.check("POST feedback comment=10MB", target.client.post(url, content=feedback))
    for url in ("/v1/records", "/v1/ingest/kserve", "/v1/ingest/seldon?topic=seldon.default.model.m.inputs"):
        response = target.client.post(url, content=HUGE_JSON, headers={"x-request-id": uuid7()})
        failures.check(f"POST {url} body=10MB", response)
    failures.assert_none()


def test_the_sinks_take_nasty_bodies_and_headers_without_a_5xx(target: Target) -> None:
    """KServe and Seldon sinks, given nasty bodies and nasty time headers, answer 2xx or 4xx."""
    failures = Failures()
    for label, raw in JSON_VALUES.items():
        kserve = {
            "Ce-Specversion": "1.0", "Ce-Id": uuid7(), "Ce-Type": "org.kubeflow.serving.inference.request",
            "Ce-Source": "fuzz", "Ce-Time": _now(), "Content-Type": "application/json",
        }  # fmt: skip
        body = b'{"inputs": ' + raw + b"}"
        failures.check(
            f"kserve body={label}", target.client.post("/v1/ingest/kserve", headers=kserve, content=body)
        )
        seldon = {"x-request-id": uuid7(), "seldon-infer-type": "json/inferModelRequest"}
        url = "/v1/ingest/seldon?topic=seldon.default.model.m.inputs"
        failures.check(f"seldon body={label}", target.client.post(url, headers=seldon, content=body))
    for label, value in TEXT_VALUES.items():
        if "\x00" in value or len(value) > 10_000:
            continue  # not a header value any HTTP client sends
        kserve = {
            "Ce-Specversion": "1.0", "Ce-Id": uuid7(), "Ce-Type": "org.kubeflow.serving.inference.request",
            "Ce-Source": "fuzz", "Ce-Time": value, "Content-Type": "application/json",
        }  # fmt: skip
        response = target.client.post("/v1/ingest/kserve", headers=kserve, content=b'{"inputs": []}')
        failures.check(f"kserve ce-time={label}", response)
        seldon = {
            "x-request-id": uuid7(),
            "seldon-infer-type": "json/inferModelRequest",
            "x-kafka-timestamp": value,
        }
        url = "/v1/ingest/seldon?topic=seldon.default.model.m.inputs"
        response = target.client.post(url, headers=seldon, content=b'{"inputs": []}')
        failures.check(f"seldon x-kafka-timestamp={label}", response)
    failures.assert_none()


# -- properties of the query parameter parsing ---------------------------------------------------

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
PROPERTY = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@PROPERTY
@given(st.text())
def test_parse_since_answers_a_utc_time_or_a_usage_error(text: str) -> None:
    """Any text is either a UTC time in the calendar or a UsageError; nothing else escapes."""
    try:
        value = parse_since(text, now=NOW)
    except UsageError:
        return
    assert value.tzinfo is not None
    assert value.utcoffset() == dt.timedelta(0)


@PROPERTY
@given(st.integers(min_value=0, max_value=10**30), st.sampled_from(sorted(UNITS)))
def test_durations_mean_that_long_ago_or_are_refused(amount: int, unit: str) -> None:
    """``<n><unit>`` is exactly that long before now, or (reaching before the year 1) a UsageError."""
    try:
        value = parse_since(f"{amount}{unit}", now=NOW)
    except UsageError:
        with pytest.raises((OverflowError, ValueError)):
            _ = NOW - dt.timedelta(**{UNITS[unit]: float(amount)})
        return
    assert value == NOW - dt.timedelta(**{UNITS[unit]: float(amount)})


@PROPERTY
@given(
    st.datetimes(),  # naive, the whole calendar: the offset is put on below
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_iso_times_mean_that_instant_or_are_refused(moment: dt.datetime, offset_minutes: int) -> None:
    """An ISO-8601 time with any offset is that instant in UTC, or (outside the calendar in UTC) a UsageError."""
    aware = moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset_minutes)))
    try:
        value = parse_since(aware.isoformat(), now=NOW)
    except UsageError:
        with pytest.raises(OverflowError):
            aware.astimezone(dt.UTC)
        return
    assert value == aware


@PROPERTY
@given(st.text())
def test_parse_attribute_answers_a_pair_or_a_usage_error(text: str) -> None:
    """Any ``--attr`` text is a (key, scalar) pair or a UsageError."""
    try:
        key, value = parse_attribute(text)
    except UsageError:
        return
    assert key
    assert key == key.strip()
    assert isinstance(value, str | int | float | bool)


@PROPERTY
@given(
    since=st.one_of(st.none(), st.text(max_size=40)),
    until=st.one_of(st.none(), st.text(max_size=40)),
    attr=st.lists(st.text(max_size=20), max_size=3),
    cursor=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70)),
    limit=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70)),
    system=st.one_of(st.none(), st.text(max_size=10)),
)
def test_build_query_answers_a_query_or_a_usage_error(
    since: str | None, until: str | None, attr: list[str], cursor: int | None, limit: int | None,
    system: str | None,
) -> None:  # fmt: skip
    """Any combination of filters is a Query a store can run (cursor and limit in range, no NUL) or a UsageError."""
    try:
        query = build_query(
            since=since, until=until, attr=attr, cursor=cursor, limit=limit, system=system, now=NOW
        )
    except UsageError:
        return
    assert isinstance(query, Query)
    assert 0 <= query.after <= MAX_SEQ
    assert "\x00" not in (query.system or "")
    assert all("\x00" not in key for key in query.attributes)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(since=st.text(max_size=30), cursor=st.integers(min_value=-(2**70), max_value=2**70))
def test_http_query_parameters_answer_200_or_4xx(since: str, cursor: int) -> None:
    """GET /v1/records and /v1/stats with any since and cursor answer 200 or 4xx (SQLite; no 5xx)."""
    for path, params in (
        ("/v1/records", {"purpose": "fuzz", "since": since, "cursor": str(cursor)}),
        ("/v1/stats", {"since": since}),
    ):
        response = _PROPERTY_CLIENT.get(path, params=params)
        assert response.status_code < 500, (path, params, response.text[:200])


def _property_client() -> TestClient:
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="inferlog-props-"))
    atexit.register(shutil.rmtree, folder, True)
    store = SQLiteStore(f"sqlite:///{folder / 'props.db'}")
    store.append(prepare(*[make_record(system="fuzz") for _ in range(3)]))
    return TestClient(create_app(store, auth=False), raise_server_exceptions=False)


_PROPERTY_CLIENT = _property_client()
