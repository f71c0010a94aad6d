"""The `inferlog` command: every command over a real SQLite log, output parsed, errors one line."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

import inferlog
from inferlog.cli import cli, main
from inferlog.ingest import Ingestor
from inferlog.record.ids import uuid7
from inferlog.store import open_store
from inferlog.store.base import Query
from tests.helpers import inference, of_kind


@dataclass
class Filled:
    url: str
    ok_ids: list[str]  # credit-risk 1.0, subject subj-1, region eu
    v2_ids: list[str]  # credit-risk 2.0, the second one failed
    fraud_id: str  # system fraud, region us, retries 3
    feedback_id: str  # on ok_ids[0], by reviewer-7

    @property
    def all_ids(self) -> list[str]:
        return [*self.ok_ids, *self.v2_ids, self.fraud_id, self.feedback_id]


def fill(tmp_path: Path, name: str = "log.db") -> Filled:
    url = f"sqlite:///{tmp_path / name}"
    v1 = inferlog.Model("credit-risk", "1.0")
    v2 = inferlog.Model("credit-risk", "2.0")
    with inferlog.open(url, system="credit", spool_dir=tmp_path / f"{name}-spool") as log:
        ok_ids = [
            log.record(
                model=v1,
                input={"income": 1000 * i},
                output={"score": i / 10},
                latency_ms=float(i),
                subject="subj-1",
                request_id=f"req-{i}",
                trace_id="trace-a",
                attributes={"region": "eu"},
            )
            for i in range(1, 4)
        ]
        v2_ids = [
            log.record(
                model=v2, input={"income": 5}, output={"score": 0.5}, latency_ms=2.0, subject="subj-2"
            ),
            log.record(model=v2, input={"income": "?"}, error=ValueError("bad income"), subject="subj-2"),
        ]
        feedback_id = log.feedback(ok_ids[0], label=1, override={"score": 0.9}, actor="reviewer-7")
    with inferlog.open(url, system="fraud", spool_dir=tmp_path / f"{name}-spool") as log:
        fraud_id = log.record(
            model=inferlog.Model("fraud-net", "7"), input=[1, 2], output=False,
            attributes={"region": "us", "retries": 3},
        )  # fmt: skip
    return Filled(url, ok_ids, v2_ids, fraud_id, feedback_id)


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    return fill(tmp_path)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def query_ids(url: str, *args: str) -> list[str]:
    result = run("--db", url, "query", "--json", "--limit", "1000", *args)
    assert result.exit_code == 0, result.output
    return [item["id"] for item in json_lines(result.stdout)]


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def store_size(url: str) -> int:
    store = open_store(url)
    try:
        return store.size()
    finally:
        store.close()


# -- query ----------------------------------------------------------------------------------------


def test_query_json_prints_every_entry_in_seq_order(filled: Filled) -> None:
    """`query --json` prints one parseable entry per line, all of them, ordered by seq."""
    result = run("--db", filled.url, "query", "--json")
    assert result.exit_code == 0, result.output
    entries = json_lines(result.stdout)
    assert [e["seq"] for e in entries] == list(range(1, 8))
    assert sorted(e["id"] for e in entries) == sorted(filled.all_ids)
    first = next(e for e in entries if e["id"] == filled.ok_ids[0])
    assert first["input"] == {"income": 1000}
    assert first["model"] == {"name": "credit-risk", "version": "1.0"}
    assert first["attributes"] == {"region": "eu"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--model", "credit-risk", "--version", "2.0"), lambda f: f.v2_ids),
        (("--status", "error"), lambda f: f.v2_ids[1:]),
        (("--system", "fraud"), lambda f: [f.fraud_id]),
        (("--subject", "subj-2"), lambda f: f.v2_ids),
        (("--request-id", "req-2"), lambda f: f.ok_ids[1:2]),
        (("--trace-id", "trace-a"), lambda f: f.ok_ids),
        (("--attr", "region=eu"), lambda f: f.ok_ids),
        (("--attr", "retries=3"), lambda f: [f.fraud_id]),
        (("--attr", 'retries="3"'), lambda f: []),
        (("--attr", "region=us", "--attr", "retries=3"), lambda f: [f.fraud_id]),
        (("--kind", "feedback"), lambda f: [f.feedback_id]),
        (("--inference-id", "ID0"), lambda f: [f.feedback_id]),
        (("--since", "1h"), lambda f: f.all_ids),
        (("--until", "1h"), lambda f: []),
        (("--since", "2999-01-01T00:00:00Z"), lambda f: []),
    ],
)
def test_query_filters_select_the_right_entries(
    filled: Filled, args: tuple[str, ...], expected: Callable[[Filled], list[str]]
) -> None:
    """Each filter option, alone or combined, returns exactly the entries it describes."""
    args = tuple(filled.ok_ids[0] if a == "ID0" else a for a in args)
    assert sorted(query_ids(filled.url, *args)) == sorted(expected(filled))


def test_query_pages_with_the_printed_cursor(filled: Filled) -> None:
    """--limit pages, stderr names the next cursor, and following cursors visits each entry once."""
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        args = ["--db", filled.url, "query", "--json", "--limit", "3", "--kind", "inference"]
        result = run(*args, *(["--cursor", cursor] if cursor else []))
        assert result.exit_code == 0
        seen += [e["seq"] for e in json_lines(result.stdout)]
        if "next cursor" not in result.stderr:
            break
        cursor = result.stderr.split("next cursor: ")[1].split()[0]
    assert seen == [1, 2, 3, 4, 5, 7]  # seq 6 is the feedback; each page's own access entries come after


def test_query_desc_reads_newest_first(filled: Filled) -> None:
    """--order desc starts from the newest entry."""
    result = run("--db", filled.url, "query", "--json", "--order", "desc", "--limit", "2")
    assert [e["seq"] for e in json_lines(result.stdout)] == [7, 6]


def test_query_table_shows_ids_models_and_errors(filled: Filled) -> None:
    """The default table output names each entry's id, model version and status."""
    result = run("--db", filled.url, "query", "--model", "credit-risk", "--version", "2.0")
    assert result.exit_code == 0, result.output
    for entry_id in filled.v2_ids:
        assert entry_id in result.stdout
    assert "credit-risk@2.0" in result.stdout
    assert "error" in result.stdout


def test_query_with_no_match_says_so(filled: Filled) -> None:
    """A query that matches nothing prints no rows and says so on stderr, exit code 0."""
    result = run("--db", filled.url, "query", "--subject", "nobody")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no entries match" in result.stderr


# -- show -----------------------------------------------------------------------------------------


def test_show_prints_the_whole_entry_with_leaf_hash_and_feedback(filled: Filled) -> None:
    """`show ID` prints pretty JSON with seq, logged_at, the leaf hash in hex and the feedback on it."""
    result = run("--db", filled.url, "show", filled.ok_ids[0])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("{\n  ")
    data = json.loads(result.stdout)
    store = open_store(filled.url)
    try:
        stored = store.get(filled.ok_ids[0])
    finally:
        store.close()
    assert stored is not None
    assert data["leaf_hash"] == stored.leaf_hash.hex()
    assert data["seq"] == stored.seq
    assert data["logged_at"].endswith("Z")
    assert data["output"] == {"score": 0.1}
    assert [f["id"] for f in data["feedback"]] == [filled.feedback_id]
    assert data["feedback"][0]["actor"] == "reviewer-7"


def test_show_unknown_id_is_one_line_error(filled: Filled) -> None:
    """An unknown id ends with one red line naming it, exit code 1, no traceback."""
    missing = uuid7()
    assert_one_line_error(run("--db", filled.url, "show", missing), missing, "no entry")


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db", "command", "fragment"),
    [
        ("mysql://nowhere/db", "stats", "no store for 'mysql://nowhere/db'"),
        ("sqlite:///missing.db", "stats", "no log at missing.db"),
        ("sqlite:///no/such/folder/x.db", "import", "folder no/such/folder does not exist"),
        ("sqlite://host/x.db", "import", "not a SQLite URL"),
    ],
)
def test_bad_db_url_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str, command: str, fragment: str
) -> None:
    """A --db that names no usable log ends with one line saying why, not a traceback."""
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run("--db", db, command, input=""), fragment)
    assert list(tmp_path.iterdir()) == []  # reading never creates an empty log


def test_db_comes_from_the_environment(filled: Filled) -> None:
    """INFERLOG_DB names the log when --db is not given."""
    result = CliRunner(env={"INFERLOG_DB": filled.url}).invoke(cli, ["query", "--json"])
    assert len(json_lines(result.stdout)) == 7


@pytest.mark.parametrize("since", ["yesterday", "5 parsecs", "2026-13-45"])
def test_bad_since_is_one_line_error(filled: Filled, since: str) -> None:
    """A --since that is neither a duration nor ISO-8601 is one line showing the accepted forms."""
    assert_one_line_error(run("--db", filled.url, "query", "--since", since), since, "30m")


def test_since_after_until_is_refused(filled: Filled) -> None:
    """An empty time window is a usage error, not an empty result."""
    result = run("--db", filled.url, "query", "--since", "1h", "--until", "2h")
    assert_one_line_error(result, "--since must be before --until")


def test_main_prints_one_red_line_and_exits_1(filled: Filled, capsys: pytest.CaptureFixture[str]) -> None:
    """The console script's main() turns inferlog errors into one line on stderr and exit code 1."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", filled.url, "show", "not-an-id"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == ["Error: no entry with id 'not-an-id' in " + filled.url]
    assert captured.out == ""


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help(command: str) -> None:
    """Each command answers --help with its description and exit code 0."""
    result = run(command, "--help")
    assert result.exit_code == 0
    assert f"Usage: cli {command}" in result.stdout


# -- tail -----------------------------------------------------------------------------------------


def test_tail_prints_the_latest_entries_oldest_first(filled: Filled) -> None:
    """`tail -n 2` prints the two newest entries in seq order; filters apply."""
    result = run("--db", filled.url, "tail", "-n", "2", "--json")
    assert [e["seq"] for e in json_lines(result.stdout)] == [6, 7]
    result = run("--db", filled.url, "tail", "-n", "5", "--status", "error")
    assert result.stdout.count("\n") == 1
    assert filled.v2_ids[1] in result.stdout


def test_tail_follow_prints_new_entries_and_exits_cleanly_on_ctrl_c(
    filled: Filled, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tail -f` prints entries appended while it runs and ends with exit code 0 on Ctrl-C."""
    import inferlog.cli.query as query_cli
    from inferlog.query import follow_pages

    new_ids: list[str] = []
    polls: list[float] = []

    def writer_then_ctrl_c(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:  # a producer logs two entries while tail waits
            entry = inferlog.InferenceRecord(
                id=uuid7(), system="credit", ts=_now(), model=inferlog.Model("credit-risk", "3.0")
            )
            other = inferlog.InferenceRecord(
                id=uuid7(), system="other", ts=_now(), model=inferlog.Model("credit-risk", "3.0")
            )
            store = open_store(filled.url)
            try:
                Ingestor(store).append([entry, other])
            finally:
                store.close()
            new_ids.append(entry.id)
            return
        raise KeyboardInterrupt

    real_follow = follow_pages  # what the CLI module imported, before the patch
    monkeypatch.setattr(
        query_cli, "follow_pages", lambda store, query, interval: real_follow(store, query, interval=interval,
                                                                              sleep=writer_then_ctrl_c)
    )  # fmt: skip
    result = run(
        "--db", filled.url, "tail", "-f", "-n", "1", "--system", "credit", "--interval", "0.5", "--json"
    )
    assert result.exit_code == 0, result.output
    printed = json_lines(result.stdout)
    assert [e["id"] for e in printed] == [filled.feedback_id, new_ids[0]]  # not the other system's
    assert polls == [0.5, 0.5]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- stats ----------------------------------------------------------------------------------------


def test_stats_json_counts_kinds_statuses_and_models(filled: Filled) -> None:
    """`stats --json` reports counts by kind and status and per model version with errors."""
    result = run("--db", filled.url, "stats", "--json")
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    assert numbers["entries"] == 7
    assert numbers["by_kind"] == {"inference": 6, "feedback": 1}
    assert numbers["by_status"] == {"ok": 5, "error": 1}
    models = {(m["model"], m["version"]): (m["count"], m["errors"]) for m in numbers["models"]}
    assert models == {
        ("credit-risk", "1.0"): (3, 0),
        ("credit-risk", "2.0"): (2, 1),
        ("fraud-net", "7"): (1, 0),
    }


def test_stats_filters_and_tables(filled: Filled) -> None:
    """`stats --system` counts only that system, and the table view names models and error rates."""
    numbers = json.loads(run("--db", filled.url, "stats", "--json", "--system", "fraud").stdout)
    assert numbers["entries"] == 1
    table = run("--db", filled.url, "stats").stdout
    assert "credit-risk" in table
    assert "50.0%" in table  # 1 error in 2 inferences of 2.0


# -- export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_writes_every_matching_entry(filled: Filled, tmp_path: Path, fmt: str) -> None:
    """`export` writes all entries, or just the filtered ones, in each format."""
    everything = tmp_path / f"all.{fmt}"
    result = run("--db", filled.url, "export", "--format", fmt, "--output", str(everything))
    assert result.exit_code == 0, result.output
    assert "exported 7 entries" in result.stderr
    only_v2 = tmp_path / f"v2.{fmt}"
    run("--db", filled.url, "export", "-o", str(only_v2), "--version", "2.0")  # format from suffix
    for path, count in ((everything, 7), (only_v2, 2)):
        reader = {"jsonl": "read_json", "csv": "read_csv", "parquet": "read_parquet"}[fmt]
        assert duckdb.execute(f"select count(*) from {reader}(?)", [str(path)]).fetchall() == [(count,)]


def test_export_limit_and_stdout(filled: Filled) -> None:
    """`export -o - --limit 2` streams the first two entries as JSON lines on stdout."""
    result = run("--db", filled.url, "export", "-f", "jsonl", "-o", "-", "--limit", "2")
    assert [e["seq"] for e in json_lines(result.stdout)] == [1, 2]


def test_export_unknown_format_lists_the_known_ones(filled: Filled, tmp_path: Path) -> None:
    """An unknown --format is one line that lists jsonl, csv and parquet."""
    result = run("--db", filled.url, "export", "-f", "xlsx", "-o", str(tmp_path / "x.xlsx"))
    assert_one_line_error(result, "xlsx", "jsonl, csv, parquet")
    assert not (tmp_path / "x.xlsx").exists()


def test_export_parquet_to_stdout_is_refused(filled: Filled) -> None:
    """Parquet needs a real file, so `-o -` is a one-line usage error."""
    assert_one_line_error(run("--db", filled.url, "export", "-f", "parquet", "-o", "-"), "parquet")


# -- import ---------------------------------------------------------------------------------------


def test_export_reimports_into_a_new_log_once(filled: Filled, tmp_path: Path) -> None:
    """A JSONL export imports into a fresh log entry for entry, and importing it again adds nothing."""
    dump = tmp_path / "dump.jsonl"
    run("--db", filled.url, "export", "-f", "jsonl", "-o", str(dump))
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = run("--db", fresh, "import", str(dump))
    assert first.exit_code == 0, first.output
    assert "7 new, 0 duplicate" in first.stdout
    second = run("--db", fresh, "import", str(dump))
    assert "0 new, 7 duplicate" in second.stdout
    original, copy = open_store(filled.url), open_store(fresh)
    try:
        for entry_id in filled.all_ids:
            a, b = original.get(entry_id), copy.get(entry_id)
            assert a is not None
            assert b is not None
            assert (a.entry, a.body) == (b.entry, b.body)
    finally:
        original.close()
        copy.close()


def test_import_of_an_export_into_its_own_log_adds_nothing(filled: Filled, tmp_path: Path) -> None:
    """Re-importing a log's own export finds only duplicates: entries survive the round trip byte for byte."""
    dump = tmp_path / "dump.jsonl"
    run("--db", filled.url, "export", "-f", "jsonl", "-o", str(dump))
    result = run("--db", filled.url, "import", str(dump))
    assert result.exit_code == 0, result.output
    assert "0 new, 7 duplicate" in result.stdout
    assert store_size(filled.url) == 9  # the 7, plus the export's access entries (credit and fraud)


GOOD = '{"system": "s", "model": {"name": "m", "version": "1"}, "input": [%d], "ts": "2026-01-01T00:00:00Z"}'


def test_one_bad_line_is_one_error_line_and_nothing_is_written(tmp_path: Path) -> None:
    """A file with one invalid line is refused whole, in one line naming the line number and field."""
    path = tmp_path / "in.jsonl"
    bad = '{"system": "s", "model": {"name": 5, "version": "1"}}'
    path.write_text("\n".join([GOOD % 1, bad, GOOD % 3]) + "\n")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    result = run("--db", url, "import", str(path))
    assert_one_line_error(result, "line 2", "model.name", "nothing was imported")
    assert store_size(url) == 0


def test_several_bad_lines_are_each_reported(tmp_path: Path) -> None:
    """Every bad line is listed with its number before the final error; still nothing is written."""
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([GOOD % 1, "not json", '{"model": {"name": "m", "version": "1"}}', "[]"]))
    url = f"sqlite:///{tmp_path / 'log.db'}"
    result = run("--db", url, "import", str(path))
    assert result.exit_code == 1
    assert "line 2: not valid JSON" in result.stderr
    assert "line 3: field `system`: is required" in result.stderr
    assert "line 4: expected a JSON object" in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"Error: 3 bad lines in {path} (above); nothing was imported"
    )
    assert store_size(url) == 0


def test_skip_invalid_imports_the_good_lines(tmp_path: Path) -> None:
    """With --skip-invalid the good lines go in and the bad ones are counted and named."""
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([GOOD % 1, "{", GOOD % 2]))
    url = f"sqlite:///{tmp_path / 'log.db'}"
    result = run("--db", url, "import", "--skip-invalid", str(path))
    assert result.exit_code == 0, result.output
    assert "2 new, 0 duplicate, 1 invalid skipped" in result.stdout
    assert "line 2" in result.stderr
    assert store_size(url) == 2


def test_lines_without_id_import_idempotently(tmp_path: Path) -> None:
    """Lines without id or ts get stable ids, so a second import adds nothing; identical lines stay distinct."""
    path = tmp_path / "in.jsonl"
    line = '{"model": {"name": "m", "version": "1"}, "input": {"x": 1}}'
    no_system = '{"model": {"name": "m", "version": "1"}, "ts": "2026-01-01T00:00:00Z"}'
    path.write_text(f"{line}\n{line}\n\n{no_system}\n")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    first = run("--db", url, "import", "--system", "batch-scoring", str(path))
    assert first.exit_code == 0, first.output
    assert "3 new, 0 duplicate" in first.stdout
    second = run("--db", url, "import", "--system", "batch-scoring", str(path))
    assert "0 new, 3 duplicate" in second.stdout
    store = open_store(url)
    try:
        entries = store.query(Query()).entries
    finally:
        store.close()
    assert {e.entry.system for e in entries} == {"batch-scoring"}
    assert {inference(e.entry).source for e in entries} == {"import"}
    assert len({e.id for e in entries}) == 3


def test_an_id_already_logged_with_other_content_writes_nothing(filled: Filled, tmp_path: Path) -> None:
    """A line reusing a logged id with different content is refused, and the rest of the file with it."""
    path = tmp_path / "in.jsonl"
    clash = json.loads(GOOD % 2) | {"id": filled.ok_ids[0]}
    path.write_text(GOOD % 1 + "\n" + json.dumps(clash) + "\n")
    result = run("--db", filled.url, "import", str(path))
    assert_one_line_error(result, "line 2", filled.ok_ids[0], "different content")
    assert store_size(filled.url) == 7


def test_import_reads_stdin(tmp_path: Path) -> None:
    """`import -` (and `import` alone) reads JSON lines from stdin."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    result = run("--db", url, "import", "-", input=GOOD % 1 + "\n" + GOOD % 2 + "\n")
    assert "2 new, 0 duplicate" in result.stdout
    result = run("--db", url, "import", input=GOOD % 1 + "\n")
    assert "0 new, 1 duplicate" in result.stdout


def test_import_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    """A file that does not exist is one error line naming it."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert_one_line_error(run("--db", url, "import", str(tmp_path / "nope.jsonl")), "nope.jsonl")


# -- demo -----------------------------------------------------------------------------------------


def test_demo_fills_a_log_and_prints_commands_with_real_ids(tmp_path: Path) -> None:
    """`inferlog demo -n 30` logs 30 predictions and suggests `show` with an id that exists."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = run("--db", url, "demo", "-n", "30")
    assert result.exit_code == 0, result.output
    assert "Logged 30 predictions" in result.stdout
    shown = [line.split()[-1] for line in result.stdout.splitlines() if " show " in line]
    assert shown
    assert run("--db", url, "show", shown[0]).exit_code == 0


def test_export_is_recorded_as_an_access_entry(tmp_path: Path) -> None:
    """An export leaves an access entry: who, the purpose, the query and how many entries left (R10)."""
    filled = fill(tmp_path)
    out = tmp_path / "x.jsonl"
    assert (
        run(
            "--db", filled.url, "export", "-o", str(out), "--model", "credit-risk", "--purpose", "DPIA review"
        ).exit_code
        == 0
    )
    store = open_store(filled.url)
    (access,) = of_kind(inferlog.AccessEntry, store.query(Query(kind="access")))
    store.close()
    assert (access.action, access.purpose, access.count) == ("export", "DPIA review", 5)
    assert access.query["model"] == "credit-risk"
    assert access.actor is not None
    assert access.actor.startswith("cli:")
