"""Bad input as an attacker or a careless script sends it: a 4xx naming the field, never a 500.

Times out of every calendar's range, cursors past 2^63, NUL bytes in filters, a full disk, and
timestamps far outside the accepted window, over HTTP on both backends and through the CLI.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

import inferlog
from inferlog.cli import cli
from inferlog.errors import BadParameter, RecordInvalid, UsageError
from inferlog.ingest.window import AcceptedWindow
from inferlog.record.canonical import format_timestamp
from inferlog.record.ids import uuid7
from inferlog.store import open_store
from inferlog.store.base import Query
from inferlog.store.postgres import PostgresStore
from tests.helpers import inference
from tests.server import conftest as server_fixtures
from tests.server.conftest import Server

server = server_fixtures.server  # the API over SQLite and PostgreSQL, as tests/server uses it
sqlite_server = server_fixtures.sqlite_server

OUT_OF_RANGE_TIMES = [
    ("since", "999999999d"),
    ("since", "0001-01-01T00:00:00+14:00"),
    ("until", "9999-12-31T23:59:59-14:00"),
    ("since", "10000000000000000000000000s"),
    ("since", "1" + "0" * 400 + "w"),
]
HUGE_CURSORS = ["9223372036854775808", str(2**64), "1" + "0" * 100]


def _assert_names(response: object, status: int, field: str) -> None:
    code = response.status_code  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert code == status, (code, body)
    assert field in body["field"], body
    assert "\n" not in body["message"]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE_TIMES)
def test_times_out_of_range_are_422_on_records(server: Server, name: str, value: str) -> None:
    """A since/until no calendar can hold answers 422 naming it on GET /v1/records."""
    response = server.client.get(
        "/v1/records", params={name: value, "purpose": "test"}, headers=server.as_("auditor")
    )
    _assert_names(response, 422, name)


@pytest.mark.parametrize(("name", "value"), [t for t in OUT_OF_RANGE_TIMES if t[0] == "since"])
def test_times_out_of_range_are_422_on_stats(server: Server, name: str, value: str) -> None:
    """The same out-of-range since answers 422 naming it on GET /v1/stats."""
    response = server.client.get("/v1/stats", params={name: value}, headers=server.as_("auditor"))
    _assert_names(response, 422, name)


@pytest.mark.parametrize("cursor", HUGE_CURSORS)
def test_cursor_past_int64_is_422(server: Server, cursor: str) -> None:
    """A cursor no seq column can hold answers 422 naming `cursor`, not a 500."""
    response = server.client.get(
        "/v1/records", params={"cursor": cursor, "purpose": "test"}, headers=server.as_("auditor")
    )
    _assert_names(response, 422, "cursor")


@pytest.mark.parametrize(
    ("name", "value"),
    [("system", "cr\x00edit"), ("model", "m\x00"), ("subject", "\x00"), ("request_id", "r\x00"),
     ("attr", "region=e\x00u"), ("attr", "reg\x00ion=eu")],
)  # fmt: skip
def test_nul_in_a_filter_is_422_on_both_backends(server: Server, name: str, value: str) -> None:
    """A NUL byte in a filter answers 422 naming the parameter on both backends, and counts no store error."""
    for path, params in (("/v1/records", {name: value, "purpose": "test"}), ("/v1/stats", {name: value})):
        if path == "/v1/stats" and name not in ("system",):
            continue
        response = server.client.get(path, params=params, headers=server.as_("auditor"))
        _assert_names(response, 422, name)
    metrics = server.client.get("/metrics").text
    assert "inferlog_store_errors_total 0.0" in metrics


@pytest.mark.parametrize("value", ["100000000000000000000000000000", str(2**63), str(-(2**63) - 1)])
def test_an_attribute_filter_past_64_bits_is_422_on_both_backends(server: Server, value: str) -> None:
    """A whole-number attribute filter no 64-bit integer holds answers 422 naming `attr` on both backends (SQLite answered 500)."""
    response = server.client.get(
        "/v1/records", params={"attr": f"score={value}", "purpose": "test"}, headers=server.as_("auditor")
    )
    _assert_names(response, 422, "attr")


# -- the CLI ------------------------------------------------------------------------------------


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _assert_one_line(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture
def log_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="credit", spool_dir=tmp_path / "spool") as log:
        for i in range(3):
            log.record(model=inferlog.Model("m", "1"), input={"i": i}, output=i)
    return url


@pytest.mark.parametrize("command", ["query", "export"])
@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE_TIMES)
def test_cli_times_out_of_range_are_one_line(
    log_url: str, tmp_path: Path, command: str, name: str, value: str
) -> None:
    """query/export --since/--until out of range end with one line naming the option, exit 1."""
    extra = ["-o", str(tmp_path / "out.jsonl")] if command == "export" else []
    _assert_one_line(_run("--db", log_url, command, *extra, f"--{name}", value), f"--{name}")


@pytest.mark.parametrize("command", ["query", "export"])
@pytest.mark.parametrize("cursor", HUGE_CURSORS)
def test_cli_huge_cursor_is_one_line(log_url: str, tmp_path: Path, command: str, cursor: str) -> None:
    """query/export --cursor past 2^63 end with one line naming --cursor, exit 1, no traceback."""
    extra = ["-o", str(tmp_path / "out.jsonl")] if command == "export" else []
    _assert_one_line(_run("--db", log_url, command, *extra, "--cursor", cursor), "--cursor")


NOT_UTF8 = "\udcff"  # how Python hands over a command-line byte that is not UTF-8 (surrogateescape)


@pytest.mark.parametrize("command", ["query", "export"])
@pytest.mark.parametrize(
    "option",
    ["--system", "--model", "--version", "--subject", "--request-id", "--trace-id", "--session-id",
     "--inference-id", "--attr=k", "--attr", "--purpose"],
)  # fmt: skip
def test_cli_text_that_is_not_utf8_is_one_line(
    log_url: str, tmp_path: Path, command: str, option: str
) -> None:
    """A filter or purpose typed with bytes that are not UTF-8 ends with one line naming it, exit 1, no traceback."""
    extra = ["-o", str(tmp_path / "out.jsonl")] if command == "export" else []
    name, _, prefix = option.partition("=")
    value = f"{prefix}={NOT_UTF8}" if prefix else (f"{NOT_UTF8}=1" if name == "--attr" else f"x{NOT_UTF8}")
    named = "purpose" if name == "--purpose" else name
    _assert_one_line(_run("--db", log_url, command, *extra, name, value), named)


def test_a_query_filter_with_a_lone_surrogate_is_refused_on_every_backend(server: Server) -> None:
    """Query() itself refuses a lone surrogate in any text filter or attribute (PostgreSQL could not be sent it)."""
    with pytest.raises(BadParameter, match="lone surrogate"):
        server.store.query(Query(subject=NOT_UTF8))
    with pytest.raises(BadParameter, match="lone surrogate"):
        server.store.query(Query(attributes={"k": NOT_UTF8}))


def test_cli_export_limit_past_int64_is_refused(log_url: str, tmp_path: Path) -> None:
    """export --limit past 2^63-1 is a usage error naming --limit, not a traceback from islice."""
    result = _run("--db", log_url, "export", "-o", str(tmp_path / "out.jsonl"), "--limit", str(2**63))
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "--limit" in result.stderr
    assert "Traceback" not in result.stderr


# -- a full disk --------------------------------------------------------------------------------


def _record(**fields: object) -> dict[str, object]:
    return {
        "id": uuid7(),
        "ts": format_timestamp(dt.datetime.now(dt.UTC)),
        "model": {"name": "credit-risk", "version": "1"},
        "input": {"x": "y" * 1000},
        "output": 1,
    } | fields


def test_full_sqlite_database_is_503_naming_the_cause_and_keeps_what_was_accepted(
    sqlite_server: Server,
) -> None:
    """A SQLite file that cannot grow (SQLITE_FULL) answers 503 'database or disk is full'; accepted records stay, and writes resume once there is room."""
    accepted = [_record() for _ in range(5)]
    response = sqlite_server.client.post("/v1/records", json=accepted, headers=sqlite_server.as_("ingest"))
    assert response.status_code == 200, response.text
    store = sqlite_server.store
    writer = store._writer  # type: ignore[attr-defined]  # the one write connection
    (pages,) = writer.execute("PRAGMA page_count").fetchone()
    writer.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow by one page
    too_much = [_record() for _ in range(40)]
    response = sqlite_server.client.post("/v1/records", json=too_much, headers=sqlite_server.as_("ingest"))
    assert response.status_code == 503, response.text
    assert "database or disk is full" in response.json()["message"]
    for record in accepted:
        stored = store.get(str(record["id"]))
        assert stored is not None
        assert inference(stored.entry).input == record["input"]
    assert all(store.get(str(record["id"])) is None for record in too_much)  # all or nothing
    writer.execute("PRAGMA max_page_count = 1073741823")
    response = sqlite_server.client.post("/v1/records", json=too_much, headers=sqlite_server.as_("ingest"))
    assert response.status_code == 200, response.text
    assert store.size() == len(accepted) + len(too_much)


# -- times outside the accepted window ----------------------------------------------------------


def _partitions(store: object) -> int:
    """How many monthly partitions the PostgreSQL entries table has (0 on SQLite)."""
    if not isinstance(store, PostgresStore):
        return 0
    sql = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'inferlog.entries'::regclass"
    row = store._run("read from", lambda conn: conn.execute(sql).fetchone())
    assert row is not None
    return int(row[0])


FAR_TIMES = [
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=31)),
    format_timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)),
]


def test_record_times_outside_the_window_are_422_and_make_no_partition(server: Server) -> None:
    """Records dated years away (or a month old, or an hour ahead) answer 422 naming `ts`, and PostgreSQL makes no partition for them."""
    before = _partitions(server.store)
    for ts in FAR_TIMES:
        batch = [_record(), _record(ts=ts)]
        response = server.client.post("/v1/records", json=batch, headers=server.as_("ingest"))
        assert response.status_code == 422, (ts, response.text)
        assert (response.json()["field"], response.json()["index"]) == ("ts", 1)
        ndjson = b"\n".join(msgspec.json.encode(r | {"system": "credit"}) for r in batch)
        response = server.client.post(
            "/v1/records",
            content=ndjson,
            headers={**server.as_("ingest"), "Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 422, (ts, response.text)
    assert server.store.size() == 0
    assert _partitions(server.store) == before
    inside = _record(ts=format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=29)))
    response = server.client.post("/v1/records", json=[inside], headers=server.as_("ingest"))
    assert response.status_code == 200, response.text


def test_feedback_times_outside_the_window_are_422(server: Server) -> None:
    """Feedback dated outside the window answers 422 naming `ts`."""
    response = server.client.post("/v1/records", json=[_record()], headers=server.as_("ingest"))
    rid = response.json()["results"][0]["id"]
    for ts in FAR_TIMES:
        response = server.client.post(
            f"/v1/records/{rid}/feedback", json={"label": 1, "ts": ts}, headers=server.as_("ingest")
        )
        assert response.status_code == 422, (ts, response.text)
        assert response.json()["field"] == "ts"


def test_the_window_is_configurable() -> None:
    """INFERLOG_MAX_RECORD_AGE and INFERLOG_MAX_CLOCK_SKEW set the window; nonsense in them is a UsageError."""
    now = dt.datetime.now(dt.UTC)
    wide = AcceptedWindow.from_env({"INFERLOG_MAX_RECORD_AGE": "400d", "INFERLOG_MAX_CLOCK_SKEW": "2h"})
    wide.check_time(now - dt.timedelta(days=399), now=now)
    wide.check_time(now + dt.timedelta(minutes=119), now=now)
    with pytest.raises(RecordInvalid, match="INFERLOG_MAX_RECORD_AGE"):
        AcceptedWindow.from_env({}).check_time(now - dt.timedelta(days=31), now=now)
    for bad in ("forever", "-1d", "1e400d", "nan"):
        with pytest.raises(UsageError, match="INFERLOG_MAX_RECORD_AGE"):
            AcceptedWindow.from_env({"INFERLOG_MAX_RECORD_AGE": bad})


def test_inferlog_import_keeps_accepting_old_records(tmp_path: Path) -> None:
    """`inferlog import` is the way old records come in: a record from 1999 is imported."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = _record(ts="1999-12-31T23:59:59Z", system="archive")
    dump = tmp_path / "old.jsonl"
    dump.write_bytes(msgspec.json.encode(old) + b"\n")
    result = _run("--db", url, "import", str(dump))
    assert result.exit_code == 0, result.output
    store = open_store(url)
    try:
        stored = store.get(str(old["id"]))
        assert stored is not None
        assert stored.entry.ts == dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    finally:
        store.close()


def test_sink_times_outside_the_window_are_422(server: Server) -> None:
    """KServe's ce-time and Seldon's x-kafka-timestamp outside the window answer 422 naming the header; nothing is kept."""
    auth = server.as_("ingest")
    for when in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        kserve_headers = {
            "Ce-Specversion": "1.0", "Ce-Id": uuid7(), "Ce-Type": "org.kubeflow.serving.inference.request",
            "Ce-Source": "iris-predictor", "Ce-Time": when, "Content-Type": "application/json", **auth,
        }  # fmt: skip
        response = server.client.post("/v1/ingest/kserve", headers=kserve_headers, content=b'{"inputs": []}')
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "ce-time"
    for ms in ("1000000000000000000", "-62135596800000", "1"):
        seldon_headers = {
            "x-request-id": uuid7(), "x-kafka-topic": "seldon.default.model.iris.inputs",
            "x-kafka-timestamp": ms, "seldon-infer-type": "json/inferModelRequest", **auth,
        }  # fmt: skip
        response = server.client.post("/v1/ingest/seldon", headers=seldon_headers, content=b'{"inputs": []}')
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "x-kafka-timestamp"


# -- values that were stored, then broke every later read -----------------------------------------


def test_an_over_long_purpose_or_system_is_refused_and_reads_keep_working(server: Server) -> None:
    """A purpose or system longer than an access entry holds answers 422 and stores nothing that breaks later reads."""
    auditor = server.as_("auditor")
    for params in ({"purpose": "p" * 300}, {"purpose": "test", "system": "s" * 300}):
        response = server.client.get("/v1/records", params=params, headers=auditor)
        assert response.status_code == 422, response.text
    response = server.client.get("/v1/stats", params={"system": "s" * 300}, headers=auditor)
    assert response.status_code == 422, response.text
    response = server.client.get("/v1/records", params={"purpose": "test", "kind": "access"}, headers=auditor)
    assert response.status_code == 200, response.text


def test_cli_export_refuses_an_over_long_purpose(log_url: str, tmp_path: Path) -> None:
    """export --purpose over 256 characters is refused before anything is written, and the log stays readable."""
    result = _run("--db", log_url, "export", "-o", str(tmp_path / "x.jsonl"), "--purpose", "p" * 300)
    assert result.exit_code == 2, result.output
    assert "--purpose" in result.output
    assert _run("--db", log_url, "query", "--kind", "access").exit_code == 0


def test_indexed_ids_over_512_characters_are_refused_at_the_edge(server: Server, tmp_path: Path) -> None:
    """A subject or request id PostgreSQL could not index answers 422 over HTTP and RecordInvalid in record(), never 503."""
    for field in ("subject", "request_id", "trace_id", "session_id"):
        response = server.client.post(
            "/v1/records", json=[_record(**{field: "x" * 20_000})], headers=server.as_("ingest")
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    url = f"sqlite:///{tmp_path / 'ids.db'}"
    with (
        inferlog.open(url, system="s", spool_dir=tmp_path / "spool") as log,
        pytest.raises(RecordInvalid, match="subject"),
    ):
        log.record(model=inferlog.Model("m", "1"), subject="x" * 513)


def test_names_a_writer_chose_never_break_or_steer_the_operators_terminal(tmp_path: Path) -> None:
    """A system or model named with Rich markup or terminal escapes: `stats`, `query` and `tail` print them inert, never crash."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="[/s]", spool_dir=tmp_path / "spool") as log:
        log.record(model=inferlog.Model("[/x]", "1\x1b[2J\x1b]0;owned\x07"), input="x")
    for command in ("stats", "query", "tail"):
        result = _run("--db", url, command)
        assert result.exit_code == 0, (command, result.output)
        assert "[/x]" in result.stdout, (command, result.stdout)
        assert "\x1b" not in result.stdout, (command, result.stdout)
        assert "\x07" not in result.stdout, (command, result.stdout)
