"""`inferlog keys init-signer`, `checkpoint` and `verify`: exit 0 only when everything holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import inferlog
from inferlog.cli import cli


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    """A log of 40 entries with a signing key in tmp_path and a checkpoint made by the CLI."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "init-signer", "--origin", "cli.test/log"])
    assert made.exit_code == 0, made.output
    assert "cli.test/log+" in made.output
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="s") as log:
        ids = [log.record(model=inferlog.Model("m", "1"), output=i) for i in range(40)]
    (tmp_path / "offbox").mkdir()
    note = runner.invoke(cli, ["--db", url, "checkpoint", "--to", str(tmp_path / "offbox")])
    assert note.exit_code == 0, note.output
    assert note.output.startswith("cli.test/log\n40\n")
    assert "— cli.test/log " in note.output
    return url, ids


def test_verify_passes_on_an_untouched_log(signed: tuple[str, list[str]]) -> None:
    """`inferlog verify` exits 0 and reports the recomputed root for an untouched log."""
    url, _ = signed
    result = CliRunner().invoke(cli, ["--db", url, "verify", "--checkpoints", "offbox"])
    assert result.exit_code == 0, result.output
    assert "OK 40 entries" in result.output


def test_verify_fails_and_names_the_first_bad_seq(signed: tuple[str, list[str]], tmp_path: Path) -> None:
    """After a payload is edited behind inferlog's back, verify exits 1 naming seq 7."""
    url, _ = signed
    conn = sqlite3.connect(tmp_path / "log.db")
    conn.execute("DROP TRIGGER entries_purge_only")
    conn.execute("UPDATE entries SET body = replace(body, '\"output\":6', '\"output\":600') WHERE seq = 7")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(cli, ["--db", url, "verify"])
    assert result.exit_code == 1
    assert "seq 7: the payload does not match its commitment" in result.output
    assert "first bad seq: 7" in result.output
    assert "Traceback" not in result.output


def test_verify_record_and_checkpoint(signed: tuple[str, list[str]], tmp_path: Path) -> None:
    """verify record proves inclusion; verify checkpoint trusts on first use, then catches a rollback."""
    url, ids = signed
    runner = CliRunner()
    rec = runner.invoke(cli, ["--db", url, "verify", "record", ids[12]])
    assert rec.exit_code == 0, rec.output
    assert "seq 13" in rec.output
    assert "of signed checkpoint 40" in rec.output
    first = runner.invoke(cli, ["--db", url, "verify", "checkpoint", "--trusted", "trusted.note"])
    assert first.exit_code == 0
    assert "trusting on first use" in first.output
    with inferlog.open(url, system="s") as log:
        log.record(model=inferlog.Model("m", "1"), output="later")
    assert runner.invoke(cli, ["--db", url, "checkpoint"]).exit_code == 0
    advanced = runner.invoke(cli, ["--db", url, "verify", "checkpoint", "--trusted", "trusted.note"])
    assert advanced.exit_code == 0
    assert "consistent with trusted 40" in advanced.output
    conn = sqlite3.connect(tmp_path / "log.db")
    conn.execute("DROP TRIGGER IF EXISTS checkpoints_no_delete")
    conn.execute("DELETE FROM checkpoints WHERE size = 41")
    conn.commit()
    conn.close()
    rollback = runner.invoke(cli, ["--db", url, "verify", "checkpoint", "--trusted", "trusted.note"])
    assert rollback.exit_code == 1
    assert "shrank" in rollback.output


def test_unknown_record_and_missing_key_are_one_line(signed: tuple[str, list[str]], tmp_path: Path) -> None:
    """An unknown id, or no verifier key, is one clear error line, not a traceback."""
    url, _ = signed
    runner = CliRunner()
    unknown = runner.invoke(cli, ["--db", url, "verify", "record", "01900000-0000-7000-8000-000000000000"])
    assert unknown.exit_code == 1
    assert "no entry with id" in unknown.output
    (tmp_path / "inferlog-signer.pub").unlink()
    nokey = runner.invoke(cli, ["--db", url, "verify", "record", "01900000-0000-7000-8000-000000000000"])
    assert nokey.exit_code == 1
    assert "verifier key" in nokey.output
    again = runner.invoke(cli, ["keys", "init-signer"])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_serve_refuses_public_address_without_auth(tmp_path: Path) -> None:
    """`serve --no-auth` on a non-loopback address is refused with one line, before listening."""
    result = CliRunner().invoke(
        cli,
        ["--db", f"sqlite:///{tmp_path / 'x.db'}", "serve", "--no-auth", "--host", "0.0.0.0"],  # noqa: S104 - refused: the point of the test
    )
    assert result.exit_code == 1
    assert "refusing to serve 0.0.0.0 without auth" in result.output


def test_verify_without_a_key_does_not_look_verified(signed: tuple[str, list[str]], tmp_path: Path) -> None:
    """With checkpoints but no verifier key, verify says signatures were NOT checked and exits 1 unless told to skip them."""
    url, _ = signed
    (tmp_path / "inferlog-signer.pub").rename(tmp_path / "elsewhere.pub")  # the default key is gone
    runner = CliRunner()
    unsigned = runner.invoke(cli, ["--db", url, "verify"])
    assert unsigned.exit_code == 1
    assert "signatures NOT checked" in unsigned.output
    assert "--key" in unsigned.output
    assert "OK" not in unsigned.output
    skipped = runner.invoke(cli, ["--db", url, "verify", "--skip-signatures"])
    assert skipped.exit_code == 0, skipped.output
    assert "UNSIGNED 40 entries" in skipped.output
    assert "signatures NOT checked" in skipped.output
    keyed = runner.invoke(cli, ["--db", url, "verify", "--key", str(tmp_path / "elsewhere.pub")])
    assert keyed.exit_code == 0, keyed.output
    assert "1 signed checkpoint(s) verified: signature, origin and root" in keyed.output
    other = runner.invoke(
        cli, ["--db", url, "verify", "--key", "elsewhere.pub", "--origin", "other.test/log"]
    )
    assert other.exit_code == 1
    assert "expected 'other.test/log'" in other.output


def test_verify_with_a_key_fails_when_every_checkpoint_was_deleted(
    signed: tuple[str, list[str]], tmp_path: Path
) -> None:
    """Deleting the store's checkpoints (as whoever rewrites the log would) leaves `verify --key` NOT VERIFIED, exit 1; the off-box copies still verify."""
    url, _ = signed
    conn = sqlite3.connect(tmp_path / "log.db")
    conn.execute("DROP TRIGGER IF EXISTS checkpoints_no_delete")
    conn.execute("DELETE FROM checkpoints")
    conn.commit()
    conn.close()
    runner = CliRunner()
    bare = runner.invoke(cli, ["--db", url, "verify", "--key", "inferlog-signer.pub"])
    assert bare.exit_code == 1, bare.output
    assert "NOT VERIFIED" in bare.output
    assert "no signed checkpoint" in bare.output
    assert "OK" not in bare.output
    unsigned = runner.invoke(
        cli, ["--db", url, "verify", "--key", "inferlog-signer.pub", "--skip-signatures"]
    )
    assert unsigned.exit_code == 0, unsigned.output
    assert "UNSIGNED 40 entries" in unsigned.output
    anchored = runner.invoke(
        cli, ["--db", url, "verify", "--key", "inferlog-signer.pub", "--checkpoints", "offbox"]
    )
    assert anchored.exit_code == 0, anchored.output
    assert "1 signed checkpoint(s) verified" in anchored.output
