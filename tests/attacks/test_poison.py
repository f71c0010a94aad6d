"""One poison record must never stop delivery: refused where it enters, or set aside once, never blocking.

The attacker (or an unlucky producer) sends a value nested far deeper than any model input, or a half of
an inference that no store could keep. Before these fixes the SDK acknowledged it and its shipper thread
died, and the KServe/Seldon sinks answered 500 to every later event.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inferlog
from inferlog.apikeys import create_key
from inferlog.errors import RecordInvalid, StoreUnavailable
from inferlog.ingest import kserve
from inferlog.record.ids import uuid7
from inferlog.record.model import Entry, InferenceRecord
from inferlog.sdk.shipper import Counters, Shipper
from inferlog.sdk.spool import Cursor, SpoolWriter
from inferlog.sdk.transport import CapturingTransport
from inferlog.server import create_app
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from tests.helpers import inferences
from tests.proxy import test_proxy as proxy_tests
from tests.proxy.test_proxy import Rig
from tests.server import conftest as server_fixtures
from tests.server.conftest import Server

server = server_fixtures.server  # the API fixture, on SQLite and PostgreSQL
rig = proxy_tests.rig  # a model server, the OIP proxy in front of it, and its Log
sqlite_server = server_fixtures.sqlite_server  # the API on SQLite only (hypothesis reuses it)

MODEL = inferlog.Model("poison", "1")
MAX_DEPTH = 64  # the documented nesting limit (docs/data-dictionary.md)
# Writers' times must fall in the server's accepted window (30 days back by default): an hour ago does.
_HOUR_AGO = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
AN_HOUR_AGO = _HOUR_AGO.strftime("%Y-%m-%dT%H:%M:%SZ")
AN_HOUR_AGO_MS = int(_HOUR_AGO.timestamp() * 1000)


def nested(depth: int) -> list[Any]:
    """A list nested ``depth`` levels deep: ``[[[...]]]``."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def dead_letters(spool: Path) -> list[dict[str, Any]]:
    return [
        msgspec.json.decode(line)
        for f in spool.rglob("dead-letter/*.jsonl")
        for line in f.read_bytes().splitlines()
    ]


def spool_frame(entry: Entry) -> bytes:
    """What ``record()`` writes into the spool for an entry (bypassing its checks)."""
    return msgspec.msgpack.encode(entry)


def deep_frame(depth: int = 5000) -> bytes:
    """A spool frame whose ``input`` is ``depth`` msgpack arrays deep: written by hand, since no encoder
    would (the stack depth of the test runner decides where they stop)."""
    marker = "@poison-marker@"
    frame = spool_frame(make_record(system="s", input=marker))
    return frame.replace(msgspec.msgpack.encode(marker), b"\x91" * (depth - 1) + b"\x90")


# -- the SDK ----------------------------------------------------------------------------------------


def test_record_refuses_a_value_nested_past_the_limit_before_acknowledging(tmp_path: Path) -> None:
    """``record(input=<995 levels>)`` raises RecordInvalid naming `input`, and the 10 records after it ship."""
    log = inferlog.open(f"sqlite:///{tmp_path / 'log.db'}", system="s", spool_dir=tmp_path / "spool")
    try:
        with pytest.raises(RecordInvalid, match=r"input.*nested deeper than 64"):
            log.record(model=MODEL, input=nested(995))
        with pytest.raises(RecordInvalid, match="attributes"):
            log.record(model=MODEL, attributes={"a": nested(MAX_DEPTH)})
        with pytest.raises(RecordInvalid, match="label"):
            log.feedback(log.record(model=MODEL), label=nested(MAX_DEPTH + 1))
        log.record(model=MODEL, input=nested(MAX_DEPTH))  # at the limit: accepted
        ids = [log.record(model=MODEL, input=i) for i in range(10)]
        assert log.flush(timeout=30)
        assert all(log.get(i) is not None for i in ids)
        assert log.counters.failed == 0
    finally:
        log.close()


def test_a_poison_frame_in_the_spool_is_dead_lettered_once_and_the_rest_ship(tmp_path: Path) -> None:
    """A frame too deep to decode (written past record()'s check) is set aside; the 10 behind it are delivered."""
    log = inferlog.open(f"sqlite:///{tmp_path / 'log.db'}", system="s", spool_dir=tmp_path / "spool")
    try:
        log._spool.append(deep_frame())
        log._spool.append(spool_frame(make_record(system="s", input=nested(MAX_DEPTH + 5))))
        ids = [log.record(model=MODEL, input=i) for i in range(10)]
        assert log.flush(timeout=30)
        assert all(log.get(i) is not None for i in ids)
        assert log.counters.failed == 2
        assert len(dead_letters(tmp_path / "spool")) == 2
        later = log.record(model=MODEL, input="after")
        assert log.flush(timeout=30)
        assert log.get(later) is not None
    finally:
        log.close()


def test_reopening_a_spool_that_holds_a_poison_frame_delivers_the_rest(tmp_path: Path) -> None:
    """A dead process's spool with a poison frame first is replayed without crashing: 10 good records arrive."""
    spool = SpoolWriter(tmp_path / "spool", segment_bytes=1 << 20, max_bytes=1 << 24, block_timeout=1.0)
    spool.append(deep_frame())
    good = [make_record(system="s", input=i) for i in range(10)]
    for entry in good:
        spool.append(spool_frame(entry))
    spool.close(delivered=False)  # as a process that ended before shipping leaves it
    log = inferlog.open(f"sqlite:///{tmp_path / 'log.db'}", system="s", spool_dir=tmp_path / "spool")
    try:
        assert log.flush(timeout=30)
        assert all(log.get(e.id) is not None for e in good)
        assert log.counters.failed == 1
    finally:
        log.close()


def test_an_unsealable_entry_is_dead_lettered_once_when_the_key_store_flaps(tmp_path: Path) -> None:
    """A batch retried because the key store was down does not dead-letter its unsealable entry a second time."""
    calls = {"flaky": 0}

    def seal(entry: Entry) -> Entry:
        assert isinstance(entry, InferenceRecord)
        if entry.input == "bad":
            raise ValueError("a value JSON cannot hold")
        if entry.input == "flaky" and calls["flaky"] == 0:
            calls["flaky"] += 1
            raise StoreUnavailable("the key store is restarting")
        return entry

    spool = SpoolWriter(tmp_path / "spool", segment_bytes=1 << 20, max_bytes=1 << 24, block_timeout=1.0)
    for value in ("bad", "flaky", "fine"):
        spool.append(spool_frame(make_record(system="s", input=value)))
    transport = CapturingTransport()
    counters = Counters()
    shipper = Shipper(spool, transport, counters, commit_interval=0.005, batch_size=100, seal=seal)
    try:
        assert shipper.flush(3, timeout=30)
        assert [e.input for e in transport.entries if isinstance(e, InferenceRecord)] == ["flaky", "fine"]
        assert counters.failed == 1
        assert len(dead_letters(tmp_path / "spool")) == 1
    finally:
        shipper.stop()
        spool.close(delivered=True)


def test_the_shipper_outlives_a_transport_that_raises_anything(tmp_path: Path) -> None:
    """A transport raising RecursionError once (not an InferlogError) is retried, not the end of shipping."""

    class Hiccup(CapturingTransport):
        def __init__(self) -> None:
            super().__init__()
            self.failures = 1

        def send(self, batch: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise RecursionError("deep inside a third-party transport")
            return super().send(batch)

    transport = Hiccup()
    log = inferlog.sdk.client.Log(transport, system="s", spool_dir=tmp_path / "spool")
    try:
        ids = [log.record(model=MODEL, input=i) for i in range(5)]
        assert log.flush(timeout=30)
        assert [e.id for e in transport.entries] == ids
        assert any(t.name == "inferlog-shipper" for t in threading.enumerate())
    finally:
        log.close()


def test_the_shipper_thread_outlives_an_unexpected_error_in_its_own_loop(tmp_path: Path) -> None:
    """An exception outside any one record (reading the spool failed once) is logged; shipping goes on."""
    transport = CapturingTransport()
    log = inferlog.sdk.client.Log(transport, system="s", spool_dir=tmp_path / "spool")
    try:
        spool = log._spool
        real_read = spool.read
        failures = [MemoryError("a transient failure outside any record")]

        def read_once_failing(cursor: Cursor, max_records: int) -> tuple[list[bytes], Cursor]:
            if failures:
                raise failures.pop()
            return real_read(cursor, max_records)

        spool.read = read_once_failing  # type: ignore[method-assign]
        ids = [log.record(model=MODEL, input=i) for i in range(5)]
        assert log.flush(timeout=30)
        assert [e.id for e in transport.entries] == ids
    finally:
        log.close()


def test_the_pipeline_refuses_a_too_deep_entry_on_every_path(tmp_path: Path) -> None:
    """An entry built past the SDK's check (65 levels) is refused by the store's pipeline, naming the field."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        with pytest.raises(RecordInvalid, match="output"):
            inferlog.pipeline.Pipeline().prepare(make_record(output={"x": nested(MAX_DEPTH)}))
        assert store.query(Query()).entries == []
    finally:
        store.close()


# -- POST /v1/records -------------------------------------------------------------------------------


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def record_json(input_json: str) -> bytes:
    """A complete record as JSON text with ``input_json`` spliced in verbatim (no encoder involved)."""
    return (
        f'{{"id":"{uuid7()}","ts":"{AN_HOUR_AGO}","model":{{"name":"m","version":"1"}},"input":{input_json}}}'
    ).encode()


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 5_000, 30_000])
@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_post_records_refuses_deep_nesting_with_422(server: Server, depth: int, content_type: str) -> None:
    """A record nested past the limit is 422 naming the limit (never 500), as an array or as NDJSON."""
    body = record_json(deep_json(depth))
    if content_type == "application/json":
        body = b"[" + body + b"]"
    r = server.client.post(
        "/v1/records", content=body, headers=server.as_("ingest") | {"Content-Type": content_type}
    )
    assert r.status_code == 422, r.text
    assert "nested deeper than 64" in r.json()["message"]
    assert server.store.query(Query(kind="inference")).entries == []
    ok = server.client.post(
        "/v1/records", content=b"[" + record_json(deep_json(MAX_DEPTH)) + b"]", headers=server.as_("ingest")
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000])
def test_feedback_refuses_deep_nesting_with_422(server: Server, depth: int) -> None:
    """A feedback label nested past the limit is 422 naming the field, never 500."""
    rid = server.client.post(
        "/v1/records", content=b"[" + record_json("1") + b"]", headers=server.as_("ingest")
    ).json()["results"][0]["id"]
    body = (f'{{"label": {deep_json(depth)}}}').encode()
    r = server.client.post(
        f"/v1/records/{rid}/feedback",
        content=body,
        headers=server.as_("ingest") | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert server.store.query(Query(kind="feedback")).entries == []


# -- the KServe and Seldon sinks --------------------------------------------------------------------

KSERVE_BODY = b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]}'
SELDON_INPUTS = "seldon.seldon-mesh.model.iris.inputs"
SELDON_OUTPUTS = "seldon.seldon-mesh.model.iris.outputs"


class Sinks:
    """The real app on a SQLite file, with a pending timeout long enough that only explicit sweeps act."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.store = SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}")
        self.key = create_key(self.store, "ingest", ["iris"], "sinks")[0]

    def app(self) -> Any:
        app = create_app(self.store)
        app.state.kserve_timeout = 3600.0
        return app

    def kserve(
        self, client: TestClient, ce_id: str, half: str, body: bytes = KSERVE_BODY, ce_time: str | None = None
    ) -> Any:
        headers = {
            "Ce-Specversion": "1.0",
            "Ce-Id": ce_id,
            "Ce-Type": f"org.kubeflow.serving.inference.{half}",
            "Ce-Source": "iris-predictor",
            "Ce-Time": ce_time or (AN_HOUR_AGO if half == "request" else AN_HOUR_AGO.replace("Z", ".2Z")),
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.key}",
        }
        return client.post("/v1/ingest/kserve?system=iris", headers=headers, content=body)

    def seldon(
        self,
        client: TestClient,
        topic: str,
        rid: str,
        body: bytes = KSERVE_BODY,
        timestamp: str = str(AN_HOUR_AGO_MS),
    ) -> Any:
        headers = {
            "x-request-id": rid,
            "seldon-infer-type": "json/infermodelrequest"
            if topic.endswith("inputs")
            else "json/infermodelresponse",
            "x-kafka-topic": topic,
            "x-kafka-timestamp": timestamp,
            "Authorization": f"Bearer {self.key}",
        }
        return client.post("/v1/ingest/seldon", headers=headers, content=body)

    def records(self) -> list[InferenceRecord]:
        page = self.store.query(Query(kind="inference", limit=1000))
        return inferences(page)


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[Sinks]:
    made = Sinks(tmp_path)
    yield made
    made.store.close()


def sweep_later(client: TestClient) -> int:
    """Sweep as if the timeout had long passed (what the sweeper thread does, on its own clock)."""
    keeper = client.app.state.kserve_pending  # type: ignore[attr-defined]
    done: int = keeper.sweep(now=time.time() + 7200)
    return done


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000])
def test_the_sinks_refuse_a_half_nested_too_deep_and_keep_answering(sinks: Sinks, depth: int) -> None:
    """A KServe or Seldon half nested past the limit is 422; once time passes, later events still get 202."""
    deep = (f'{{"inputs": {deep_json(depth)}}}').encode()
    with TestClient(sinks.app()) as client:
        r = sinks.kserve(client, "deep", "request", deep)
        assert r.status_code == 422, r.text
        assert "nested deeper than 64" in r.json()["message"]
        r = sinks.seldon(client, SELDON_INPUTS, "deep", deep)
        assert r.status_code == 422, r.text
        assert sinks.kserve(client, "fine", "request").status_code == 202
        sweep_later(client)
        assert sinks.kserve(client, "after", "request").status_code == 202
        assert sinks.seldon(client, SELDON_INPUTS, "after").status_code == 202
    assert len(sinks.records()) == 1  # "fine", alone; nothing of "deep"


def test_a_poison_half_already_in_the_pending_file_is_set_aside_not_fatal(sinks: Sinks) -> None:
    """A half that cannot be recorded (kept by an older version) is moved aside by the sweep; the sinks go on, also after a restart."""
    with TestClient(sinks.app()) as client:
        assert sinks.kserve(client, "first", "request").status_code == 202
        keeper = client.app.state.kserve_pending  # type: ignore[attr-defined]
        poison = kserve.Event(
            id="poison", source="iris-predictor", half="request", data=("[" * 5000 + "]" * 5000).encode()
        )
        with keeper.lock:
            keeper.db.execute(
                "INSERT INTO pending (rid, half, system, event, received, source) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    kserve.record_id("iris-predictor", "poison"),
                    "request",
                    "iris",
                    kserve.to_json(poison),
                    0.0,
                    "kserve",
                ),
            )
        assert sweep_later(client) == 1  # "first"; the poison is set aside
        assert sinks.kserve(client, "second", "request").status_code == 202
        assert sinks.seldon(client, SELDON_INPUTS, "second").status_code == 202
        (refused,) = keeper.db.execute("SELECT reason FROM refused").fetchall()
        assert "nested deeper than 64" in refused[0]
    with TestClient(sinks.app()) as client:  # a restart: the sweeper resumes, the sinks answer
        assert sinks.kserve(client, "third", "request").status_code == 202
        sweep_later(client)
    assert {r.request_id for r in sinks.records()} == {"first", "second", "third"}


def test_a_seldon_timestamp_out_of_range_is_refused_and_its_partner_joins_alone(sinks: Sinks) -> None:
    """``x-kafka-timestamp: 10**18`` is 422 naming the header; the partner half is then accepted (202), not 500."""
    with TestClient(sinks.app()) as client:
        r = sinks.seldon(client, SELDON_INPUTS, "huge", timestamp="1000000000000000000")
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "x-kafka-timestamp"
        assert sinks.seldon(client, SELDON_OUTPUTS, "huge").status_code == 202
        assert sinks.seldon(client, SELDON_INPUTS, "huge").status_code == 202  # the same half, sent right
    (record,) = sinks.records()
    assert record.input is not None
    assert record.output is not None


# -- the OIP proxy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000])
def test_the_proxy_passes_the_models_answer_for_a_deep_body_and_records_it(rig: Rig, depth: int) -> None:
    """A request nested past the limit gets the model's own answer through the proxy (never a 500 of ours), and is recorded."""
    body = (f'{{"inputs": {deep_json(depth)}}}').encode()
    headers = {"Content-Type": "application/json"}
    with httpx.Client() as c:
        direct = c.post(rig.upstream.url + "/v2/models/iris/infer", content=body, headers=headers)
        proxied = c.post(rig.proxy.url + "/v2/models/iris/infer", content=body, headers=headers)
    assert proxied.status_code == direct.status_code
    assert proxied.content == direct.content
    (record,) = rig.records()
    assert record.status == "error"


def test_a_kserve_time_that_is_no_time_in_utc_is_refused_and_the_sink_goes_on(sinks: Sinks) -> None:
    """``ce-time: 0001-01-01T00:00:00+14:00`` (before year 1 in UTC) is 422 naming `ts`; later events get 202 after a sweep."""
    with TestClient(sinks.app()) as client:
        assert sinks.kserve(client, "before", "request").status_code == 202
        r = sinks.kserve(client, "early", "request", ce_time="0001-01-01T00:00:00+14:00")
        assert r.status_code == 422, r.text
        assert r.json()["field"] in ("ce-time", "ts")  # the accepted window, or the record's own check
        sweep_later(client)
        assert sinks.kserve(client, "later", "request").status_code == 202


# -- property: whatever a producer sends, the log answers and keeps what it acknowledged ------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
)
# Nesting is the attack: values around the limit and far past it, wrapped around ordinary JSON.
DEEP_VALUES = st.builds(
    lambda depth, leaf, as_object: _wrap(leaf, depth, as_object),
    st.integers(0, 3 * MAX_DEPTH) | st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 900, 2_000]),
    JSON_VALUES,
    st.booleans(),
)


def _wrap(leaf: Any, depth: int, as_object: bool) -> Any:
    for _ in range(depth):
        leaf = {"k": leaf} if as_object else [leaf]
    return leaf


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(DEEP_VALUES, min_size=1, max_size=5))
def test_every_value_record_accepts_is_delivered_and_the_rest_are_refused(
    tmp_path_factory: Any, values: list[Any]
) -> None:
    """Any JSON value, nested up to far past the limit: record() refuses it or the store gets it; the shipper never stalls."""
    folder = tmp_path_factory.mktemp("prop")
    log = inferlog.open(f"sqlite:///{folder / 'log.db'}", system="s", spool_dir=folder / "spool")
    try:
        accepted, refused = [], []
        for value in values:
            try:
                accepted.append(log.record(model=MODEL, input=value))
            except RecordInvalid as exc:
                refused.append(exc.field)
        assert set(refused) <= {"input"}
        assert log.flush(timeout=60)
        assert log.counters.failed == 0
        assert all(log.get(rid) is not None for rid in accepted)
    finally:
        log.close()


DEPTHS = st.integers(0, 3 * MAX_DEPTH) | st.sampled_from(
    [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 900, 2_000, 8_000]
)


def _wrapped_text(leaf: Any, depth: int, as_object: bool) -> str:
    """JSON text of ``leaf`` inside ``depth`` arrays or objects, spelled out (no encoder's stack involved)."""
    opening, closing = ('{"k":', "}") if as_object else ("[", "]")
    return opening * depth + msgspec.json.encode(leaf).decode() + closing * depth


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(depth=DEPTHS, leaf=JSON_VALUES, as_object=st.booleans(), ndjson=st.booleans())
def test_post_records_answers_200_or_422_for_any_nesting(
    sqlite_server: Server, depth: int, leaf: Any, as_object: bool, ndjson: bool
) -> None:
    """Any JSON value inside any depth of nesting, as a posted record's input, gets 200 or 422, never a 5xx."""
    record = record_json(_wrapped_text(leaf, depth, as_object))
    body, kind = (record, "application/x-ndjson") if ndjson else (b"[" + record + b"]", "application/json")
    headers = sqlite_server.as_("ingest") | {"Content-Type": kind}
    r = sqlite_server.client.post("/v1/records", content=body, headers=headers)
    assert r.status_code in (200, 422), r.text
    assert (r.status_code == 200) == (depth + depth_of(leaf) <= MAX_DEPTH)


def depth_of(value: Any) -> int:
    """How many arrays/objects ``value`` nests (a scalar: 0)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0
