"""`inferlog export --to DIR`: the lake from the command line, its one-line errors, and the privacy policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import inferlog
from inferlog.cli import cli
from inferlog.record.model import AccessEntry
from inferlog.store import open_store
from inferlog.store.base import Query
from tests.cli.test_cli import assert_one_line_error
from tests.export.lake_read import pyarrow_rows

MODEL = inferlog.Model("scorer", "3")
POLICY = """
[keystore]
path = "keys.db"
"""


def run(url: str, *args: str, config: Path | None = None) -> Result:
    options = ["--config", str(config)] if config is not None else []
    return CliRunner().invoke(cli, ["--db", url, *options, *args])


@pytest.fixture
def plain(tmp_path: Path) -> str:
    """A log without a policy: two inferences and a feedback."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="credit", spool_dir=tmp_path / "spool") as log:
        first = log.record(model=MODEL, input={"x": 1}, output=0.5)
        log.record(model=MODEL, input={"x": 2}, output=0.7)
        log.feedback(first, label=1)
    return url


@pytest.fixture
def sealed_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A log under a policy with a key store (input and output sealed): records of subjects ann and bob."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="credit", config=config) as log:
        log.record(model=MODEL, input={"secret": "ANN-SECRET-1"}, subject="ann")
        log.record(model=MODEL, input={"secret": "BOB-SECRET-1"}, subject="bob")
    return url, config


def lake_text(root: Path) -> str:
    """Every value in the lake as one string, to search for plaintext."""
    return json.dumps(pyarrow_rows(root, ["system", "date"]), default=str)


def test_export_to_a_lake_and_again(plain: str, tmp_path: Path) -> None:
    """`export --to DIR` writes the payload entries, says where and how; a rerun adds none, and each run is an access entry."""
    lake = tmp_path / "lake"
    first = run(plain, "export", "--to", str(lake), "--partition-by", "system,date,model")
    assert first.exit_code == 0, first.output
    assert "added 3 entries in 2 files to " in first.stderr
    assert "(a lake partitioned by" in first.stderr
    assert "lake lake" not in first.stderr
    assert "partitioned by system,date,model; sealed fields sealed" in first.stderr
    again = run(plain, "export", "--to", str(lake))
    assert again.exit_code == 0, again.output
    assert "added 0 entries in 0 files" in again.stderr
    assert len(pyarrow_rows(lake, ["system", "date", "model"])) == 3
    store = open_store(plain)
    trail = store.query(Query(kind="access")).entries
    store.close()
    accesses = [stored.entry for stored in trail]
    assert all(isinstance(access, AccessEntry) for access in accesses)
    assert [(a.action, a.purpose, a.count) for a in accesses if isinstance(a, AccessEntry)] == [
        ("export", "export", 3),
        ("export", "export", 0),
    ]
    assert [
        (a.query["lake"], a.query["after_seq"], a.query["partition_by"])
        for a in accesses
        if isinstance(a, AccessEntry)
    ] == [
        (True, 0, "system,date,model"),
        (True, 3, "system,date,model"),
    ]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["--to", "LAKE", "--partition-by", "system,team"],
            ["cannot partition by 'team'", "system, date, model"],
        ),
        (["--to", "log.db"], ["is a file"]),
        (["--to", "LAKE", "--output", "x.parquet"], ["not both"]),
        (["--output", "x.parquet", "--partition-by", "date"], ["--partition-by is for a lake"]),
        (["--to", "LAKE", "--limit", "3"], ["--limit", "own cursor"]),
        (["--to", "LAKE", "--format", "csv"], ["a lake is Parquet"]),
        (["--to", "LAKE", "--since", "1d"], ["by seq, not by time"]),
        ([], ["give --output FILE"]),
    ],
)
def test_bad_lake_requests_are_one_line(
    plain: str, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    """Each misuse of --to / --partition-by is one line naming the problem, with nothing written."""
    args = [str(tmp_path / a) if a in ("LAKE", "log.db") else a for a in args]
    assert_one_line_error(run(plain, "export", *args), *fragments)
    assert not (tmp_path / "LAKE").exists()


def test_sealed_fields_stay_sealed_unless_a_purpose_is_stated(
    sealed_log: tuple[str, Path], tmp_path: Path
) -> None:
    """With the key store at hand but no --purpose, the lake holds ciphertext; with one it holds plaintext and the
    access entry keeps the purpose; a revealed lake is not continued without a purpose."""
    url, config = sealed_log
    sealed = run(url, "export", "--to", "sealed", config=config)
    assert sealed.exit_code == 0, sealed.output
    assert "sealed fields sealed" in sealed.stderr
    inputs = [row["input"] for row in pyarrow_rows(tmp_path / "sealed", ["system", "date"])]
    assert len(inputs) == 2
    assert all(json.loads(value).startswith("ilenc1:") for value in inputs)
    assert "SECRET" not in lake_text(tmp_path / "sealed")

    opened = run(url, "export", "--to", "open", "--purpose", "model retraining", config=config)
    assert opened.exit_code == 0, opened.output
    assert "sealed fields revealed" in opened.stderr
    assert "ANN-SECRET-1" in lake_text(tmp_path / "open")
    store = open_store(url)
    last = store.query(Query(kind="access", order="desc", limit=1)).entries[0].entry
    store.close()
    assert isinstance(last, AccessEntry)
    assert (last.purpose, last.query["sealed"]) == ("model retraining", False)

    refused = run(url, "export", "--to", "open", config=config)
    assert_one_line_error(refused, "revealed", "stated purpose")


def test_erased_subjects_never_reach_a_later_export(sealed_log: tuple[str, Path], tmp_path: Path) -> None:
    """A subject erased between runs: the next run of a revealed lake writes their new entries as purged rows
    (no payload, no subject), and the sealed lake keeps only ciphertext for what it had, now shredded."""
    url, config = sealed_log
    assert run(url, "export", "--to", "open", "--purpose", "retraining", config=config).exit_code == 0
    assert run(url, "export", "--to", "sealed", config=config).exit_code == 0
    with inferlog.open(url, system="credit", config=config) as log:
        later = log.record(model=MODEL, input={"secret": "ANN-SECRET-2"}, subject="ann")
        log.record(model=MODEL, input={"secret": "BOB-SECRET-2"}, subject="bob")
    erased = CliRunner().invoke(
        cli, ["--db", url, "--config", str(config), "erase", "--subject", "ann", "--yes"]
    )
    assert erased.exit_code == 0, erased.output
    for name, purpose in (("open", ["--purpose", "retraining"]), ("sealed", [])):
        result = run(url, "export", "--to", name, *purpose, config=config)
        assert result.exit_code == 0, result.output
        assert "added 2 entries" in result.stderr
    opened = {row["id"]: row for row in pyarrow_rows(tmp_path / "open", ["system", "date"])}
    assert opened[later]["input"] is None
    assert opened[later]["subject"] is None
    assert json.loads(opened[later]["extra"])["purged"] is True
    assert "ANN-SECRET-2" not in lake_text(tmp_path / "open")
    assert "BOB-SECRET-2" in lake_text(tmp_path / "open")  # only the erased subject is gone
    sealed_text = lake_text(tmp_path / "sealed")
    assert "SECRET" not in sealed_text
    assert sealed_text.count("ilenc1:") == 3  # ann's first (its key now destroyed), bob's two
