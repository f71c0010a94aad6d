"""Nothing accepted may be lost or silently changed: what the log takes in, it keeps as sent, or refuses.

Each test plays a producer the log used to fail quietly: fields dropped with a 200, numbers stored as
null, a record's source guessed from its text, a late model output thrown away as a duplicate, records
left in a spool nobody delivers, a prediction lost because its value was not JSON.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import inferlog
from inferlog.cli import cli
from inferlog.errors import RecordInvalid, UsageError
from inferlog.ingest import kserve
from inferlog.ingest.service import Ingestor
from inferlog.record.ids import uuid7
from inferlog.record.model import InferenceRecord
from inferlog.sdk.client import Log
from inferlog.sdk.spool import SpoolWriter
from inferlog.store import Store
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from tests.attacks import test_poison as poison_tests
from tests.attacks.test_poison import AN_HOUR_AGO, SELDON_INPUTS, SELDON_OUTPUTS, Sinks, sweep_later
from tests.helpers import backend_store, in_process_client, inference, present
from tests.server import conftest as server_fixtures
from tests.server.conftest import Server

server = server_fixtures.server  # the API fixture, on SQLite and PostgreSQL
sqlite_server = server_fixtures.sqlite_server
sinks = poison_tests.sinks  # the KServe and Seldon sinks over one SQLite store

NDJSON = {"Content-Type": "application/x-ndjson"}
MODEL = inferlog.Model("m", "1")


def inferences(log: Log) -> list[InferenceRecord]:
    assert log.flush(timeout=30)
    return [s.entry for s in log.query(kind="inference").entries if isinstance(s.entry, InferenceRecord)]


def rec(**fields: object) -> dict[str, object]:
    return {
        "id": uuid7(),
        "ts": AN_HOUR_AGO,
        "model": {"name": "m", "version": "1"},
        "input": {"x": 1},
    } | fields


def post_records(
    server: Server, records: list[dict[str, Any]], *, ndjson: bool = False, sdk: bool = False
) -> Any:
    headers = server.as_("ingest")
    if sdk:
        headers |= {"User-Agent": "inferlog-sdk"}
    if ndjson:
        body = b"\n".join(msgspec.json.encode(r) for r in records)
        return server.client.post("/v1/records", content=body, headers=headers | NDJSON)
    return server.client.post("/v1/records", json=records, headers=headers)


# -- unknown fields and numbers out of range --------------------------------------------------------


@pytest.mark.parametrize("ndjson", [False, True])
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"atributes": {"a": 1}}, "atributes"),
        ({"model": {"name": "m", "version": "1", "sha": "x"}}, "model.sha"),
    ],
)
def test_a_record_with_an_unknown_field_is_refused_naming_it(
    server: Server, ndjson: bool, extra: dict[str, Any], field: str
) -> None:
    """A misspelt or unknown field is 422 naming it (record index too), never dropped with a 200."""
    r = post_records(server, [rec(), rec(**extra)], ndjson=ndjson)
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["index"]) == (field, 1)
    assert server.store.query(Query(kind="inference")).entries == []


def test_feedback_refuses_unknown_fields_and_numbers_out_of_range_like_records(server: Server) -> None:
    """Feedback with ``label: 1e400`` or an unknown field is 422 naming it, as a record or in a batch is."""
    (result,) = post_records(server, [rec()]).json()["results"]
    url = f"/v1/records/{result['id']}/feedback"
    headers = server.as_("ingest") | {"Content-Type": "application/json"}
    for body, field in (
        (b'{"label": 1e400}', "label"),
        (b'{"label": 1, "lable": 2}', "lable"),
        (b'{"attributes": {"x": [1, -1e999]}}', "attributes"),
    ):
        r = server.client.post(url, content=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["field"], (body, r.json())
    assert server.store.query(Query(kind="feedback")).entries == []
    batch = b'[{"kind": "feedback", "inference_id": "%s", "label": 1e400}]' % result["id"].encode()
    r = server.client.post("/v1/records", content=batch, headers=headers)
    assert r.status_code == 422
    assert (r.json()["field"], r.json()["index"]) == ("label", 0)
    ok = server.client.post(url, content=b'{"label": 1e300}', headers=headers)
    assert ok.status_code == 200, ok.text


# -- where a record came from -----------------------------------------------------------------------


def test_source_is_http_unless_the_record_says_otherwise_whatever_its_text(server: Server) -> None:
    """The word "source" in an attribute key or value does not make an HTTP record an SDK one."""
    complete = {"kind": "inference", "system": "credit"}  # NDJSON of complete entries: the fast path
    tricky = [
        rec(**complete, attributes={"source": "x"}),
        rec(**complete, input={"data_source": "warehouse"}),
        rec(**complete, output="source"),
        rec(**complete, source="broker"),
    ]
    assert post_records(server, tricky, ndjson=True).json()["new"] == 4
    sources = [inference(present(server.store.get(str(r["id"]))).entry).source for r in tricky]
    assert sources == ["http", "http", "http", "broker"]
    sdk = [
        rec(kind="inference", system="credit", attributes={"source": "y"})
    ]  # complete, as the SDK sends it
    assert post_records(server, sdk, ndjson=True, sdk=True).json()["new"] == 1
    assert inference(present(server.store.get(str(sdk[0]["id"]))).entry).source == "sdk"


# -- a late half of a KServe or Seldon inference ----------------------------------------------------


def test_a_kserve_response_after_its_request_was_recorded_alone_is_recorded_linked(sinks: Sinks) -> None:
    """A response arriving after the timeout is recorded as its own entry linked to the request's record, once."""
    output = (
        b'{"model_name": "iris", "outputs": [{"name": "y", "shape": [1], "datatype": "INT64", "data": [2]}]}'
    )
    with TestClient(sinks.app()) as client:
        assert sinks.kserve(client, "slow", "request").status_code == 202
        assert sweep_later(client) == 1
        late = sinks.kserve(client, "slow", "response", output)
        assert late.status_code == 202
        assert late.json()["status"] == "continued"
        again = sinks.kserve(client, "slow", "response", output)  # the logger's retry
        assert again.json()["status"] == "duplicate"
        assert sinks.kserve(client, "slow", "request").json()["status"] == "duplicate"
    first, second = sorted(sinks.records(), key=lambda r: "continues" in r.attributes)
    assert first.id == kserve.record_id("iris-predictor", "slow")
    assert first.attributes["kserve_half"] == "request"
    assert second.attributes["continues"] == first.id
    assert second.attributes["kserve_half"] == "response"
    assert second.request_id == first.request_id == "slow"
    assert second.output == msgspec.json.decode(output)


def test_a_seldon_output_after_its_input_was_recorded_alone_is_recorded_linked(sinks: Sinks) -> None:
    """Seldon's outputs arriving after the timeout are recorded linked to the inputs' record, not dropped."""
    with TestClient(sinks.app()) as client:
        assert sinks.seldon(client, SELDON_INPUTS, "slow").status_code == 202
        assert sweep_later(client) == 1
        late = sinks.seldon(client, SELDON_OUTPUTS, "slow")
        assert late.json()["status"] == "continued"
    first, second = sorted(sinks.records(), key=lambda r: "continues" in r.attributes)
    assert second.attributes["continues"] == first.id
    assert second.attributes["seldon_half"] == "response"
    assert second.output is not None


# -- logging never breaks the function it watches ----------------------------------------------------


class Opaque:
    """A return value that is not JSON (and has no tolist/to_dict)."""

    def __repr__(self) -> str:
        return "Opaque(42)"


def test_a_decorated_function_returning_non_json_returns_and_is_recorded(log: Log) -> None:
    """``@log.inference`` on a function returning a non-JSON value returns it; the record holds its repr and says so."""

    @log.inference(MODEL)
    def predict(x: int) -> Opaque:
        return Opaque()

    @log.inference(MODEL)
    async def apredict(x: int) -> Opaque:
        return Opaque()

    assert isinstance(predict(1), Opaque)
    assert isinstance(asyncio.run(apredict(2)), Opaque)
    records = inferences(log)
    assert [r.output for r in records] == ["Opaque(42)", "Opaque(42)"]
    assert all(r.attributes["inferlog_not_json"]["field"] == "output" for r in records)
    assert [r.input for r in records] == [1, 2]


def test_trace_and_wrap_record_non_json_values_without_raising(log: Log) -> None:
    """``log.trace`` with a non-JSON output and ``inferlog.wrap`` of a model returning one never raise."""
    with log.trace(MODEL, input=Opaque()) as call:
        call.output = {"fine": True}

    class Estimator:
        def predict(self, x: Any) -> Opaque:
            return Opaque()

    assert isinstance(inferlog.wrap(Estimator(), log, MODEL).predict([[1.0]]), Opaque)
    traced, wrapped = inferences(log)
    assert traced.input == "Opaque(42)"
    assert traced.output == {"fine": True}
    assert traced.attributes["inferlog_not_json"]["field"] == "input"
    assert wrapped.output == "Opaque(42)"


POLICY_SEALING_SUBJECTS = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]
"""


@pytest.mark.parametrize("with_policy", [False, True])
def test_a_lone_surrogate_is_refused_naming_the_field_and_never_breaks_a_decorated_function(
    tmp_path: Path, with_policy: bool
) -> None:
    """Text with a lone surrogate (bytes that were not UTF-8) is RecordInvalid naming the field, and a decorated function returning it still returns, recorded as its repr."""
    config = None
    if with_policy:  # the policy seals a subject's record before spooling: that encodes it first
        config = tmp_path / "inferlog.toml"
        config.write_text(POLICY_SEALING_SUBJECTS)
    log = inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="s", spool_dir=tmp_path / "spool", config=config
    )
    try:
        for field, value in [("input", "\ud800"), ("output", {"a": ["\udc80"]}), ("subject", "\udcff"),
                             ("actor", "a\udfffb"), ("attributes", {"\ud800": 1})]:  # fmt: skip
            fields: dict[str, Any] = {"subject": "customer-1"} | {field: value}
            with pytest.raises(RecordInvalid, match="lone surrogate") as refused:
                log.record(model=MODEL, **fields)
            assert refused.value.field == field

        @log.inference(MODEL)
        def predict(x: str, subject: str | None = None) -> str:
            return "\udcff" + x

        assert predict("a", subject="customer-1") == "\udcffa"
        (recorded,) = inferences(log)
        assert recorded.output == repr("\udcffa")
        assert recorded.attributes["inferlog_not_json"]["field"] == "output"
    finally:
        log.close()


def test_fail_closed_still_refuses_what_cannot_be_recorded(tmp_path: Path) -> None:
    """With ``fail_closed=True`` the refusal reaches the caller: no prediction goes out unlogged."""
    log = inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="s", spool_dir=tmp_path / "spool", fail_closed=True
    )
    try:

        @log.inference(MODEL)
        def predict(x: int) -> Opaque:
            return Opaque()

        with pytest.raises(RecordInvalid, match="output"):
            predict(1)
    finally:
        log.close()


# -- the spool folder deleted under a running process -----------------------------------------------


def test_a_spool_folder_deleted_under_a_running_log_is_recreated_and_nothing_is_dropped(
    tmp_path: Path,
) -> None:
    """``rm -rf`` of the spool while recording: the folder comes back, every later record is kept and delivered."""
    spool = tmp_path / "spool"
    log = inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="s", spool_dir=spool, spool_segment_bytes=64 * 1024
    )
    try:
        for i in range(20):
            log.record(model=MODEL, input=i)
        shutil.rmtree(spool)
        ids = [log.record(model=MODEL, input={"pad": "x" * 500, "i": i}) for i in range(2000)]
        assert log.counters.dropped == 0
        assert log.flush(timeout=60)
        assert log.counters.shipped == 2020
        assert log.get(ids[-1]) is not None
        assert any(spool.glob("w-*/*.seg")), "the writer directory was recreated"
    finally:
        log.close()


def test_drops_are_logged_as_one_line_with_a_count_not_a_traceback_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When records cannot be made durable (fail_closed=False), the log says so once with a count, not per record."""
    spool = tmp_path / "spool"
    log = inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="s", spool_dir=spool, spool_segment_bytes=64 * 1024
    )
    try:
        shutil.rmtree(spool)
        spool.write_text(
            "not a folder"
        )  # the spool cannot come back: every record past the segment is dropped
        with caplog.at_level(logging.ERROR, logger="inferlog"):
            for i in range(500):
                log.record(model=MODEL, input={"pad": "x" * 500, "i": i})
        assert log.counters.dropped > 300
        lines = [r for r in caplog.records if "NOT logged" in r.getMessage()]
        assert 1 <= len(lines) <= 2
        assert all(r.exc_info is None for r in caplog.records)
        assert "spool" in lines[0].getMessage()
    finally:
        spool.unlink()
        log.close(timeout=5)


# -- a script that records and exits without close() ------------------------------------------------

SCRIPT = """
import sys
import inferlog

log = inferlog.open(sys.argv[1], system="s")
for i in range(5000):
    log.record(model=inferlog.Model("m", "1"), input={"i": i})
# no log.close(): the interpreter exits here
"""


def test_a_script_that_exits_without_close_still_delivers_what_it_recorded(tmp_path: Path) -> None:
    """Interpreter exit flushes an open Log: all 5,000 records are in the store when the script has ended."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    subprocess.run([sys.executable, "-c", SCRIPT, url], check=True, timeout=300)
    store = SQLiteStore(url)
    try:
        assert store.stats(Query())["size"] == 5000
    finally:
        store.close()


def test_reading_commands_say_when_a_spool_holds_undelivered_records(tmp_path: Path) -> None:
    """``stats`` and ``query`` print one line on stderr while an ended process's spool waits; none once delivered."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    inferlog.open(url, system="s").close()
    spool = SpoolWriter(
        Path(f"{tmp_path / 'log.db'}-spool"), segment_bytes=1 << 16, max_bytes=1 << 20, block_timeout=1.0
    )
    spool.append(msgspec.msgpack.encode(make_record(system="s")))
    spool.close(delivered=False)  # as a process killed before its shipper ran leaves it
    runner = CliRunner()
    for command in (["stats"], ["query"]):
        result = runner.invoke(cli, ["--db", url, *command])
        assert result.exit_code == 0, result.output
        notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
        assert len(notes) == 1, result.stderr
        assert "1 spool folder(s)" in notes[0]
    inferlog.open(url, system="s").close()  # the next open delivers the spool
    result = runner.invoke(cli, ["--db", url, "stats"])
    assert "note:" not in result.stderr


# -- attribute filters: one behaviour on every backend ----------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend."""
    store = backend_store(request, tmp_path / "log.db")
    yield store
    store.close()


def test_attribute_filters_match_json_values_the_same_on_every_backend(any_store: Store) -> None:
    """``true`` matches only true, ``1`` only numbers equal to 1, ``"1"`` only the string; NaN is refused on both."""
    values: list[Any] = [True, 1, "1", 1.0, False, 0, 3.5]
    records = [make_record(system="s", attributes={"v": v}) for v in values]
    Ingestor(any_store).append(records)

    def matching(wanted: Any) -> list[Any]:
        page = any_store.query(Query(attributes={"v": wanted}))
        return sorted((values[[r.id for r in records].index(s.id)] for s in page.entries), key=repr)

    assert matching(True) == [True]
    assert matching(False) == [False]
    assert matching(1) == [1, 1.0]  # 1.0 is stored as 1 (RFC 8785): the same JSON number
    assert matching("1") == ["1"]
    assert matching(0) == [0]
    assert matching(3.5) == [3.5]
    for bad in (math.nan, math.inf):
        with pytest.raises(UsageError, match="finite"):
            any_store.query(Query(attributes={"v": bad}))


def test_dead_letters_of_records_a_server_refused_import_with_inferlog_import(
    sqlite_server: Server, tmp_path: Path
) -> None:
    """Records a server refused (older than its accepted window) land in dead-letter/ and `inferlog import` of that file brings them in."""
    import datetime as dt

    from inferlog.sdk.http import HttpTransport

    transport = HttpTransport("http://testserver", sqlite_server.keys["ingest"])
    transport._http = in_process_client(
        sqlite_server.client.app,
        headers={**sqlite_server.as_("ingest"), "User-Agent": "inferlog-sdk"},
    )
    spool = tmp_path / "sdk-spool"
    log = Log(transport, system="credit", spool_dir=spool)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)  # outside the server's 30-day window
    try:
        refused = [log.record(model=MODEL, input={"i": i}, ts=old) for i in range(3)]
        fresh = log.record(model=MODEL, input={"i": "fresh"})
        assert log.flush(timeout=30)
        assert log.counters.failed == 3
    finally:
        log.close()
    (letters,) = spool.rglob("dead-letter/*.jsonl")
    db = tmp_path / "server.db"
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", "import", str(letters)])
    assert result.exit_code == 0, result.output
    assert "3 new" in result.output
    for entry_id in [*refused, fresh]:
        assert sqlite_server.store.get(entry_id) is not None
    again = CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", "import", str(letters)])
    assert again.exit_code == 0, again.output
    assert "0 new, 3 duplicate" in again.output


def test_a_dead_letter_that_kept_its_spool_frame_imports_or_names_its_problem(tmp_path: Path) -> None:
    """A dead letter holding the raw spool frame imports as its record; an unreadable frame is one line naming `record.frame`."""
    import base64

    entry = make_record(system="credit", input={"kept": "as a frame"})
    letter = {"reason": "cannot be sealed: key store down", "record": {"frame": base64.b64encode(
        msgspec.msgpack.encode(entry)).decode()}}  # fmt: skip
    good = tmp_path / "good.jsonl"
    good.write_bytes(msgspec.json.encode(letter) + b"\n")
    db = f"sqlite:///{tmp_path / 'log.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"reason": "undecodable", "record": {"frame": "bm90IG1zZ3BhY2s="}}\n')
    refused = CliRunner().invoke(cli, ["--db", db, "import", str(bad)])
    assert refused.exit_code == 1
    assert "record.frame" in refused.stderr
    assert "Traceback" not in refused.output


class BrokenStr(Exception):
    """An exception whose message cannot be made: ``str()`` of it raises."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"input": "caf\udce9"}, "input"),  # what os.fsdecode makes of a Latin-1 file name
        ({"output": {0: 0.1, 1: 0.9}}, "output"),  # a classifier's probabilities by class index
        ({"attributes": {"deep": [{"x": {2: "y"}}]}}, "attributes"),
        ({"parameters": {None: 1}}, "parameters"),
        ({"error": inferlog.ErrorInfo("E", 42)}, "error"),  # type: ignore[arg-type]
        ({"latency_ms": math.nan}, "latency_ms"),
        ({"latency_ms": math.inf}, "latency_ms"),
    ],
)
def test_record_refuses_what_no_store_keeps_before_acknowledging(
    log: Log, fields: dict[str, Any], field: str
) -> None:
    """Lone surrogates, non-string object keys, a non-str error message and a NaN latency raise RecordInvalid naming the field in record(), instead of being acknowledged and dead-lettered."""
    with pytest.raises(RecordInvalid) as refused:
        log.record(model=MODEL, **fields)
    assert refused.value.field == field
    log.record(model=MODEL, input="after")
    inferences(log)
    assert log.counters.failed == 0


def test_string_subclass_keys_are_still_recorded(log: Log) -> None:
    """Keys that are str subclasses (numpy's ``str_``) are strings to JSON: recorded, not refused."""
    import numpy as np

    entry_id = log.record(model=MODEL, input={np.str_("a"): 1, "b": {np.str_("c"): [1]}})
    inferences(log)
    stored = log.get(entry_id)
    assert stored is not None
    assert inference(stored.entry).input == {"a": 1, "b": {"c": [1]}}
    assert log.counters.failed == 0


def test_feedback_refuses_non_string_keys_and_lone_surrogates(log: Log) -> None:
    """``log.feedback`` refuses a label with a non-string key or a lone surrogate naming the field; nothing is dead-lettered."""
    inference = log.record(model=MODEL)
    for label in ({1: "fraud"}, "\ud800"):
        with pytest.raises(RecordInvalid) as refused:
            log.feedback(inference, label=label)
        assert refused.value.field == "label"
    inferences(log)
    assert log.counters.failed == 0


def test_capture_records_values_with_int_keys_or_surrogates_and_never_breaks_the_function(log: Log) -> None:
    """``@log.inference`` returning int-keyed probabilities or a lone surrogate returns them; each is recorded (as repr) and none dead-lettered."""

    @log.inference(MODEL)
    def classify(x: int) -> dict[int, float]:
        return {0: 0.25, 1: 0.75}

    @log.inference(MODEL)
    def name_of(x: int) -> str:
        return "caf\udce9"

    assert classify(1) == {0: 0.25, 1: 0.75}
    assert name_of(2) == "caf\udce9"
    records = inferences(log)
    assert [r.output for r in records] == ["{0: 0.25, 1: 0.75}", "'caf\\udce9'"]
    assert all(r.attributes["inferlog_not_json"]["field"] == "output" for r in records)
    assert log.counters.failed == 0


def test_an_exception_whose_str_raises_reaches_the_caller_unchanged_and_is_recorded(log: Log) -> None:
    """A decorated function raising an exception whose ``str()`` fails: the caller gets that exception, and an error record is kept."""

    @log.inference(MODEL)
    def predict(x: int) -> int:
        raise BrokenStr

    with pytest.raises(BrokenStr):
        predict(1)
    (record,) = inferences(log)
    assert record.status == "error"
    assert record.error is not None
    assert record.error.type == "BrokenStr"


def test_a_dead_letter_sealed_under_a_key_store_imports_with_its_config(tmp_path: Path) -> None:
    """A dead letter whose kept frame is sealed (a policy with a key store) imports with --config, sealed again; without it, one line says so."""
    import base64

    from inferlog.keystore.protection import load_protection
    from inferlog.privacy.frames import FrameCipher

    config = tmp_path / "inferlog.toml"
    config.write_text('[keystore]\npath = "keys.db"\n[defaults]\nencrypt = ["input"]\n')
    keyring = load_protection(config).keyring
    assert keyring is not None
    entry = make_record(system="credit", input={"secret": "planted-7781"})
    frame = FrameCipher(keyring).seal(msgspec.msgpack.encode(entry))
    letters = tmp_path / "letters.jsonl"
    letters.write_bytes(
        msgspec.json.encode({"reason": "x", "record": {"frame": base64.b64encode(frame).decode()}}) + b"\n"
    )
    plain = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'a.db'}", "import", str(letters)])
    assert plain.exit_code == 1
    assert "--config" in plain.stderr
    sealed = CliRunner().invoke(
        cli, ["--config", str(config), "--db", f"sqlite:///{tmp_path / 'b.db'}", "import", str(letters)]
    )
    assert sealed.exit_code == 0, sealed.output
    assert "1 new" in sealed.output
    assert b"planted-7781" not in (tmp_path / "b.db").read_bytes()


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (inferlog.Model("m" * 300, "1"), "model.name"),
        (inferlog.Model("", "1"), "model.name"),
        (inferlog.Model("m", 5), "model.version"),  # type: ignore[arg-type]
        (inferlog.Model("m", ["1"]), "model.version"),  # type: ignore[arg-type]
    ],
)
def test_record_refuses_a_model_no_store_keeps_before_acknowledging(
    log: Log, model: inferlog.Model, fragment: str
) -> None:
    """A Model built in code with an empty, over-long or non-string field is refused by record() naming it, not dead-lettered later."""
    with pytest.raises(RecordInvalid, match=fragment) as refused:
        log.record(model=model)
    assert refused.value.field == "model"
    inferences(log)
    assert log.counters.failed == 0


@pytest.mark.parametrize(
    "fields",
    [{"comment": 5}, {"actor": 7}, {"ts": dt.datetime(2026, 1, 1)}],  # noqa: DTZ001 - the naive time is the point
)
def test_feedback_refuses_mistyped_fields_before_acknowledging(log: Log, fields: dict[str, Any]) -> None:
    """``log.feedback`` refuses a non-string comment or actor and a naive ts naming the field, instead of dead-lettering it."""
    inference = log.record(model=MODEL)
    with pytest.raises(RecordInvalid) as refused:
        log.feedback(inference, label=1, **fields)
    assert refused.value.field == next(iter(fields))
    inferences(log)
    assert log.counters.failed == 0


def test_attributes_that_are_no_mapping_are_refused_naming_them_and_capture_goes_on(log: Log) -> None:
    """``attributes=[...]`` or ``parameters="..."`` raise RecordInvalid naming the field (not a TypeError), so a decorated function still returns."""
    with pytest.raises(RecordInvalid) as refused:
        log.record(model=MODEL, attributes=[1, 2])  # type: ignore[arg-type]
    assert refused.value.field == "attributes"
    with pytest.raises(RecordInvalid) as refused:
        log.record(model=MODEL, parameters="abc")  # type: ignore[arg-type]
    assert refused.value.field == "parameters"
    with pytest.raises(RecordInvalid) as refused:
        log.feedback(log.record(model=MODEL), attributes=[1])  # type: ignore[arg-type]
    assert refused.value.field == "attributes"

    @log.inference(MODEL, parameters="temperature=0.2")
    def predict(x: int) -> int:
        return x + 1

    assert predict(1) == 2
    assert any(r.attributes.get("inferlog_not_json") for r in inferences(log))


def test_inferlog_proxy_stopped_by_sigterm_delivers_and_releases_its_spool(tmp_path: Path) -> None:
    """`inferlog proxy` stopped by SIGTERM (how Kubernetes stops a pod) closes its log first: its record is in the store and its spool folder is released.

    uvicorn re-raises the signal once it has shut down, so the CLI's ``finally: log.close()`` never ran:
    the records stayed in the spool (lost with the pod's disk) and every CLI command warned about them.
    """
    import signal
    import time

    import httpx

    from tests.fix_server import _env
    from tests.helpers import free_port

    url, spool, port = f"sqlite:///{tmp_path / 'proxy.db'}", tmp_path / "spool", free_port()
    env = _env() | {"INFERLOG_SPOOL_DIR": str(spool)}
    command = [sys.executable, "-m", "inferlog", "proxy", "--upstream", f"http://127.0.0.1:{free_port()}",
               "--port", str(port), "--db", url, "--system", "iris"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, answer = time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline:
            try:  # the upstream is down: the proxy answers 502 and records the failed call
                answer = httpx.post(f"http://127.0.0.1:{port}/v2/models/iris/infer", json={"inputs": []})
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None, "the proxy did not come up within 30 s"
        assert answer.status_code == 502, answer.text
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [p.name for p in spool.iterdir()] == [], "the proxy left its spool folder behind"
    store = SQLiteStore(url)
    try:
        (stored,) = [inference(s.entry) for s in store.query(Query(kind="inference")).entries]
        assert stored.status == "error"
    finally:
        store.close()
