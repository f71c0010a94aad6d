"""``inferlog periods`` and ``inferlog verifications``: answers from the log, reads audited, bad ids one line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import inferlog
from inferlog.cli import cli
from inferlog.record.model import AccessEntry
from inferlog.store import open_store
from inferlog.store.base import Query
from tests.record.test_schema import biometric


def _filled(tmp_path: Path) -> tuple[str, str, str]:
    """A log with one finished period and one biometric match confirmed by two persons; (db, period, id)."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="gate", spool_dir=tmp_path / "spool") as log:
        with log.period(purpose="gate A3", actor="operator-7") as period:
            rid = log.record(model=inferlog.Model("face-match", "3.1"), biometric=biometric())
        for actor in ("officer-1", "officer-2"):
            log.feedback(rid, verification="confirmed", actor=actor)
    return url, period.id, rid


def test_periods_lists_each_period_and_audits_the_read(tmp_path: Path) -> None:
    """The period shows with its start, end and purpose; the read leaves an access entry."""
    url, pid, _ = _filled(tmp_path)
    result = CliRunner().invoke(cli, ["--db", url, "periods", "--system", "gate", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = map(json.loads, result.output.splitlines())
    assert (row["id"], row["purpose"], row["actor"], row["open"]) == (pid, "gate A3", "operator-7", False)
    table = CliRunner().invoke(cli, ["--db", url, "periods"])
    assert "1 period(s) of use" in table.output
    store = open_store(url)
    try:
        actions = [
            e.entry.action
            for e in store.query(Query(kind="access")).entries
            if isinstance(e.entry, AccessEntry)
        ]
    finally:
        store.close()
    assert actions == ["periods", "periods"]


def test_verifications_says_two_person_and_exits_1_when_not(tmp_path: Path) -> None:
    """Two distinct confirmations answer yes (exit 0); an unverified inference answers no (exit 1)."""
    url, _, rid = _filled(tmp_path)
    result = CliRunner().invoke(cli, ["--db", url, "verifications", rid, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["confirmed_by"] == ["officer-1", "officer-2"]
    with inferlog.open(url, system="gate", spool_dir=tmp_path / "spool") as log:
        lone = log.record(model=inferlog.Model("face-match", "3.1"), biometric=biometric())
    unverified = CliRunner().invoke(cli, ["--db", url, "verifications", lone])
    assert unverified.exit_code == 1
    assert "two-person verified: no" in unverified.output
    unknown = CliRunner().invoke(cli, ["--db", url, "verifications", "01890a5d-ac96-774b-bcce-b302099a8057"])
    assert unknown.exit_code == 1
    assert "no inference with id" in unknown.output


def test_verifications_lists_a_systems_uses_and_needs_an_id_or_a_system(tmp_path: Path) -> None:
    """``--system`` lists each use with its verifiers; ``--unverified`` keeps open matches (exit 1); neither is one line."""
    url, _, rid = _filled(tmp_path)
    with inferlog.open(url, system="gate", spool_dir=tmp_path / "spool") as log:
        lone = log.record(model=inferlog.Model("face-match", "3.1"), biometric=biometric())
    listed = CliRunner().invoke(cli, ["--db", url, "verifications", "--system", "gate", "--json"])
    assert listed.exit_code == 1  # one match is not two-person verified
    rows = {row["id"]: row for row in map(json.loads, listed.output.splitlines())}
    assert (rows[rid]["two_person"], rows[lone]["two_person"]) == (True, False)
    only = CliRunner().invoke(
        cli, ["--db", url, "verifications", "--system", "gate", "--unverified", "--json"]
    )
    assert [json.loads(line)["id"] for line in only.output.splitlines()] == [lone]
    none = CliRunner().invoke(cli, ["--db", url, "verifications", "--system", "gate", "--database", "other"])
    assert none.exit_code == 0
    assert "0 biometric use(s)" in none.output
    neither = CliRunner().invoke(cli, ["--db", url, "verifications"])
    assert neither.exit_code == 1
    assert "name one INFERENCE_ID" in neither.output


def test_the_access_entry_of_a_windowed_read_names_its_window(tmp_path: Path) -> None:
    """`periods --since/--until` and `verifications --system --since` record the window they read in the
    access entry, as the HTTP routes do: an auditor sees what was asked, not a wider read."""
    url, _, _ = _filled(tmp_path)
    for args in (
        ["periods", "--system", "gate", "--since", "1h", "--until", "2099-01-01T00:00:00"],
        ["verifications", "--system", "gate", "--since", "1h", "--until", "2099-01-01T00:00:00"],
    ):
        result = CliRunner().invoke(cli, ["--db", url, *args, "--json"])
        assert result.exit_code == 0, result.output
    store = open_store(url)
    try:
        trail = [
            e.entry for e in store.query(Query(kind="access")).entries if isinstance(e.entry, AccessEntry)
        ]
    finally:
        store.close()
    assert [t.action for t in trail] == ["periods", "biometric"]
    for entry in trail:
        assert entry.query["since"], entry.query
        assert entry.query["until"].startswith("2099-01-01"), entry.query
