"""`inferlog evidence` and `inferlog verify pack`: a pack from the command line, checked offline; errors in one line."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from inferlog.cli import cli
from inferlog.pipeline import Pipeline
from inferlog.store import open_store
from inferlog.testing import make_record
from tests.evidence.conftest import SINCE, Made


@pytest.fixture
def copy(made: Made, tmp_path: Path) -> tuple[str, Path, Path]:
    """A copy of the evidence test log (its URL, policy file and signing key), free to write to."""
    folder = tmp_path / "log"
    shutil.copytree(made.folder, folder, ignore=shutil.ignore_patterns("spool*"))
    return f"sqlite:///{folder / 'log.db'}", folder / "inferlog.toml", folder / "keys" / "signer.key"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def evidence(url: str, config: Path, key: Path, out: Path, *more: str) -> Result:
    return run(
        "--db", url, "--config", str(config), "evidence", "--system", "credit", "--since", "2026-03-01",
        "--until", "2026-06-01", "--out", str(out), "--key-file", str(key), *more,
    )  # fmt: skip


def test_evidence_writes_a_pack_that_verify_pack_accepts(
    copy: tuple[str, Path, Path], tmp_path: Path
) -> None:
    """The pack is written, its read is on record as an access entry, and `verify pack` says OK."""
    url, config, key = copy
    out = tmp_path / "credit.zip"
    result = evidence(url, config, key, out, "--purpose", "request of the authority, case 17")
    assert result.exit_code == 0, result.output
    assert f"pack written to {out}:" in result.stdout
    assert "each proven in signed checkpoint" in result.stdout
    public = key.with_name("signer.pub").read_text().strip()
    assert f"verify it with: inferlog verify pack {out} --key '{public}'" in result.stdout
    store = open_store(url)
    try:
        last = store.scan(store.size() - 1, 1)[0].entry
    finally:
        store.close()
    assert last.action == "evidence"  # type: ignore[union-attr]
    assert last.purpose == "request of the authority, case 17"  # type: ignore[union-attr]
    verified = run("verify", "pack", str(out), "--key", str(key.with_name("signer.pub")))
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith(f"OK {out}: manifest signed by evidence.test/log")
    grouped = run("verify", "--key", public, "pack", str(out))  # the group's --key serves too
    assert grouped.exit_code == 0, grouped.output


def test_a_subject_is_pseudonymized_as_query_does(
    copy: tuple[str, Path, Path], made: Made, tmp_path: Path
) -> None:
    """--subject alice under a pseudonymizing policy selects alice's entries, and the pack names her pseudonym."""
    url, config, key = copy
    out = tmp_path / "alice.zip"
    result = evidence(url, config, key, out, "--subject", "alice")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as zipped:
        info = json.loads(zipped.read("pack.json"))
    assert info["selection"]["subject"] == made.refs["alice"]
    assert info["entries"]["by_kind"]["inference"] > 0


def test_verify_pack_names_what_is_wrong(copy: tuple[str, Path, Path], tmp_path: Path) -> None:
    """A tampered pack: exit 1, a FAIL line per problem naming the file, and NOT VERIFIED."""
    url, config, key = copy
    out = tmp_path / "pack"
    assert evidence(url, config, key, out).exit_code == 0
    (out / "policy.json").write_text("{}\n")
    result = run("verify", "pack", str(out), "--key", str(key.with_name("signer.pub")))
    assert result.exit_code == 1
    assert "FAIL policy.json: its SHA-256 differs from the manifest's (the file was changed)" in result.stderr
    assert f"NOT VERIFIED {out}: 1 problem(s)" in result.stderr


def test_no_covering_checkpoint_is_one_line(copy: tuple[str, Path, Path], tmp_path: Path) -> None:
    """An inference of the period after the newest checkpoint: one line saying to run `inferlog checkpoint`."""
    url, config, key = copy
    store = open_store(url)
    try:
        late = make_record(system="credit", ts=SINCE + dt.timedelta(days=2))
        store.append(Pipeline().prepare_all([late]))
    finally:
        store.close()
    line = one_line_error(evidence(url, config, key, tmp_path / "p.zip"))
    assert line.startswith("Error: no signed checkpoint covers the period's entries yet")
    assert line.endswith("run `inferlog checkpoint` first")
    assert not (tmp_path / "p.zip").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--since", "2026-07-01"), "Error: --since must be before --until"),
        (("--since", "last spring"), "Error: --since: cannot read 'last spring' as a time"),
        (("--key-file", "/nonexistent/signer.key"), "Error: no signing key at /nonexistent/signer.key"),
        (("--out", "/nonexistent/folder/p.zip"), "Error: no folder /nonexistent/folder for --out"),
    ],
)
def test_bad_input_is_one_line(
    copy: tuple[str, Path, Path], tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    """A bad option value is one red line (no traceback), naming the option or the file."""
    url, config, key = copy
    args = dict(
        zip(
            ("--since", "--key-file", "--out"), ("2026-03-01", str(key), str(tmp_path / "p.zip")), strict=True
        )
    )
    args[change[0]] = change[1]
    result = run(
        "--db", url, "--config", str(config), "evidence", "--system", "credit", "--until", "2026-06-01",
        *[item for pair in args.items() for item in pair],
    )  # fmt: skip
    assert one_line_error(result).startswith(message)


def test_verify_pack_without_a_key_is_one_line(
    pack: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No --key, no INFERLOG_VERIFIER_KEY, no signer .pub: one line saying what to pass."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INFERLOG_VERIFIER_KEY", raising=False)
    monkeypatch.delenv("INFERLOG_SIGNER_KEY_FILE", raising=False)
    line = one_line_error(run("verify", "pack", str(pack)))
    assert (
        line
        == "Error: verifying a pack needs the log's verifier key: pass --key (or set INFERLOG_VERIFIER_KEY)"
    )
