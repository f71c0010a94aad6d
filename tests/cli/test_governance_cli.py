"""`inferlog policy`, `retention`, `erase` and `keystore`: what an operator types, what they get back."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import inferlog
from inferlog.cli import cli

MODEL = inferlog.Model("scorer", "3")
POLICY = """
[keystore]
path = "keys.db"

[defaults]
retention = "6mo"

[[defaults.redact]]
detectors = ["email"]
"""


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, list[str]]:
    """A policy, a signing key and a log with old and new records of two subjects."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    assert CliRunner().invoke(cli, ["keys", "init-signer", "--origin", "gov.test/log"]).exit_code == 0
    url = f"sqlite:///{tmp_path / 'log.db'}"
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    with inferlog.open(url, system="credit", config=config) as log:
        ids = [
            log.record(model=MODEL, input={"mail": "ann@example.org"}, subject="ann", ts=old),
            log.record(model=MODEL, input={"x": 1}, subject="ann"),
            log.record(model=MODEL, input={"x": 2}, subject="bob"),
        ]
    return url, config, ids


def run(url: str, config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--db", url, "--config", str(config), *args], input=input)


def test_policy_show_check_and_apply(setup: tuple[str, Path, list[str]]) -> None:
    """show prints the normalized policy and digest; apply records it once as an admin entry."""
    url, config, _ = setup
    shown = run(url, config, "policy", "show")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["defaults"]["retention"] == "6mo"
    assert len(data["digest"]) == 64
    checked = run(url, config, "policy", "check")
    assert checked.exit_code == 0
    assert "valid" in checked.output
    already = run(url, config, "policy", "apply")  # the SDK recorded it when it opened the log
    assert "already records this policy" in already.output
    config.write_text(POLICY.replace('retention = "6mo"', 'retention = "7mo"'))
    first = run(url, config, "policy", "apply")
    assert first.exit_code == 0
    assert "admin entry" in first.output
    again = run(url, config, "policy", "apply")
    assert again.exit_code == 0
    assert "already records this policy" in again.output


def test_an_invalid_policy_is_one_clear_line(setup: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    """A retention below six months without force: exit 1, the key and the fix in one line, no traceback."""
    url, _, _ = setup
    bad = tmp_path / "bad.toml"
    bad.write_text('[systems.chat]\nretention = "30d"\n')
    result = run(url, bad, "policy", "check", str(bad))
    assert result.exit_code == 1
    assert "systems.chat" in result.output
    assert "force_short_retention" in result.output
    assert "Traceback" not in result.output
    typo = tmp_path / "typo.toml"
    typo.write_text('[defaults]\nretension = "1y"\n')
    result = run(url, typo, "policy", "check", str(typo))
    assert result.exit_code == 1
    assert "retension" in result.output


def test_retention_plan_and_apply(setup: tuple[str, Path, list[str]]) -> None:
    """The plan names what goes; apply purges it, and verify still passes."""
    url, config, ids = setup
    plan = run(url, config, "retention", "plan", "--json")
    assert plan.exit_code == 0, plan.output
    credit = next(s for s in json.loads(plan.output)["systems"] if s["system"] == "credit")
    assert credit["purge"] == 1
    applied = run(url, config, "retention", "apply")
    assert applied.exit_code == 0
    assert "credit: purged 1" in applied.output
    shown = run(url, config, "show", ids[0])
    assert json.loads(shown.output)["purged"] is True
    assert run(url, config, "checkpoint").exit_code == 0  # verify with a key needs a signed head
    assert run(url, config, "verify").exit_code == 0


def test_erase_prints_a_certificate_with_a_signed_checkpoint(setup: tuple[str, Path, list[str]]) -> None:
    """erase --subject: a JSON certificate with counts and a checkpoint signed after the erasure."""
    url, config, ids = setup
    refused = run(url, config, "erase", "--subject", "ann", input="n\n")
    assert refused.exit_code == 1  # confirmation declined: nothing happened
    assert json.loads(run(url, config, "show", ids[1]).output)["input"] == {"x": 1}
    result = run(url, config, "erase", "--subject", "ann", "--yes", "--key-file", "inferlog-signer.key")
    assert result.exit_code == 0, result.output
    certificate = json.loads(result.output)
    assert certificate["records"] == 2
    assert certificate["keys_destroyed"] == 1
    assert "ann" not in json.dumps(certificate).replace("annotation", "")
    assert certificate["checkpoint"]["note"].startswith("gov.test/log\n")
    assert json.loads(run(url, config, "show", ids[1]).output)["purged"] is True
    assert json.loads(run(url, config, "show", ids[2]).output)["input"] == {"x": 2}
    assert run(url, config, "verify").exit_code == 0
    exported = run(
        url, config, "export", "--format", "jsonl", "--output", "after.jsonl", "--purpose", "retraining"
    )
    assert exported.exit_code == 0, exported.output
    lines = {row["id"]: row for row in map(json.loads, Path("after.jsonl").read_text().splitlines())}
    assert lines[ids[1]].get("purged") is True
    assert "input" not in lines[ids[1]]
    assert lines[ids[2]]["input"] == {"x": 2}
    sealed = run(url, config, "export", "--sealed", "--output", "sealed.jsonl", "--purpose", "archive")
    assert sealed.exit_code == 0, sealed.output
    rows = {row["id"]: row for row in map(json.loads, Path("sealed.jsonl").read_text().splitlines())}
    assert rows[ids[2]]["input"].startswith("ilenc1:")  # ciphertext: an erasure shreds this file too


def test_keystore_rotate_rewraps_and_entries_still_open(setup: tuple[str, Path, list[str]]) -> None:
    """rotate re-wraps under a new version; retire destroys the old one; plaintext unchanged throughout."""
    url, config, ids = setup
    listed = run(url, config, "keystore", "list", "--prefix", "epoch:")
    assert listed.exit_code == 0
    assert "epoch:credit:" in listed.output
    name = listed.output.split("\t")[0].rpartition("#")[0]
    rotated = run(url, config, "keystore", "rotate", name)
    assert rotated.exit_code == 0, rotated.output
    assert "re-wrapped 1 data keys" in rotated.output
    retired = run(url, config, "keystore", "retire", name)
    assert retired.exit_code == 0, retired.output
    assert "destroyed 1 old versions" in retired.output
    versions = run(url, config, "keystore", "list", "--prefix", name).output.splitlines()
    assert [line.split("\t")[2].split()[0] for line in versions] == ["destroyed", "live"]
    for entry_id in ids:
        assert "input" in json.loads(run(url, config, "show", entry_id).output)
    assert run(url, config, "checkpoint").exit_code == 0  # verify with a key needs a signed head
    assert run(url, config, "verify").exit_code == 0
    missing = run(url, config, "keystore", "rotate", "epoch:nope:2020-01")
    assert missing.exit_code == 1
    assert "no live key" in missing.output
    pseudonyms = run(url, config, "keystore", "rotate", "pseudonym")
    assert pseudonyms.exit_code == 1
    assert "cannot be rotated" in pseudonyms.output


def test_import_under_a_policy_seals_and_reimport_is_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inferlog import` with --config: lines are redacted and sealed; the same file again is all duplicates."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'imported.db'}"
    lines: list[dict[str, Any]] = [
        {"kind": "inference", "id": str(uuid.uuid4()), "system": "credit", "ts": "2026-10-01T00:00:00Z",
         "model": {"name": "m", "version": "1"}, "input": {"note": "Brontë Halloway, ann@example.org"}}
        for _ in range(3)
    ]  # fmt: skip
    source = tmp_path / "lines.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first = run(url, config, "import", str(source))
    assert first.exit_code == 0, first.output
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("imported.db*"))
    assert b"Halloway" not in raw
    again = run(url, config, "import", str(source))
    assert again.exit_code == 0, again.output
    assert "0 new, 3 duplicate" in again.output
    shown = json.loads(run(url, config, "show", lines[0]["id"]).output)
    assert shown["input"] == {"note": "Brontë Halloway, [REDACTED:email]"}


def test_reimporting_subject_lines_without_sealed_fields_is_all_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line with a subject but nothing to seal compares by its pseudonym: the same file twice adds nothing."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'imported.db'}"
    line = {"kind": "inference", "id": str(uuid.uuid4()), "system": "credit", "ts": "2026-10-01T00:00:00Z",
            "model": {"name": "m", "version": "1"}, "subject": "ann"}  # fmt: skip
    source = tmp_path / "lines.jsonl"
    source.write_text(json.dumps(line) + "\n")
    assert run(url, config, "import", str(source)).exit_code == 0
    again = run(url, config, "import", str(source))
    assert again.exit_code == 0, again.output
    assert "0 new, 1 duplicate" in again.output
