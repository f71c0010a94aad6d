"""docs/evidence.md's third-party checks, run as written: Go's sumdb/note and sumdb/tlog, sha256sum, DuckDB.

The Go program and the SQL are taken from the docs page itself, so the page cannot drift from what
works. Go is built offline from Debian's packaged source (`golang-go`, `golang-golang-x-mod-dev`); the
test fails, never skips, without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import duckdb
import pytest

from inferlog.evidence import layout
from inferlog.evidence.rows import PackRow, write_parquet
from inferlog.ledger.checkpoint import NoteSigner
from tests.evidence.conftest import ORIGIN, Made

DOC = Path(__file__).resolve().parents[2] / "docs" / "evidence.md"
GO_SOURCE = Path("/usr/share/gocode")
INSTALL = "apt-get update && apt-get install -y golang-go golang-golang-x-mod-dev"


def block(kind: str) -> str:
    """The one fenced block of this kind in docs/evidence.md."""
    found = re.findall(rf"^```{kind}\n(.*?)^```$", DOC.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert len(found) == 1, f"docs/evidence.md should hold one ```{kind} block"
    return str(found[0])


@pytest.fixture(scope="module")
def verifypack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs page's Go program, built against Go's own sumdb packages, offline."""
    go = shutil.which("go")
    if go is None or not (GO_SOURCE / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        pytest.fail(f"Go and golang.org/x/mod are needed: {INSTALL}", pytrace=False)
    folder = tmp_path_factory.mktemp("verifypack")
    (folder / "verifypack.go").write_text(block("go"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "GO111MODULE": "off",
        "GOPATH": str(GO_SOURCE), "GOCACHE": str(folder / "cache"), "GOFLAGS": "",
    }  # fmt: skip
    built = subprocess.run(
        [go, "build", "-o", str(folder / "verifypack"), "verifypack.go"],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return folder / "verifypack"


@pytest.fixture
def folder(pack: Path, tmp_path: Path) -> Path:
    with zipfile.ZipFile(pack) as zipped:
        zipped.extractall(tmp_path / "pack")
    return tmp_path / "pack"


def go(program: Path, folder: Path, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program), str(folder), key], capture_output=True, text=True, check=False)


def test_go_verifies_a_pack(verifypack: Path, made: Made, folder: Path) -> None:
    """Go's note and tlog accept the manifest, the checkpoints, every inclusion and consistency proof."""
    done = go(verifypack, folder, made.verifier_key)
    assert done.returncode == 0, done.stdout + done.stderr
    info = json.loads((folder / layout.PACK_INFO).read_text())
    assert done.stdout == (
        f"OK {info['entries']['count']} entries included in checkpoint {info['checkpoint']['size']}; "
        f"{len(info['earlier_checkpoints'])} earlier checkpoint(s) consistent with it\n"
    )


def test_go_refuses_a_changed_payload_and_a_forged_manifest(
    verifypack: Path, made: Made, folder: Path
) -> None:
    """A body edited with its manifest line updated and re-signed by another key: Go refuses the manifest;
    the same edit under the log's own manifest: Go names the file."""
    entries = (folder / layout.ENTRIES_JSONL).read_bytes().splitlines(keepends=True)
    row = json.loads(entries[-1])
    assert row["body"] is not None
    row["body"] = row["body"].replace('"kind"', '"kind" ')
    entries[-1] = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    (folder / layout.ENTRIES_JSONL).write_bytes(b"".join(entries))
    done = go(verifypack, folder, made.verifier_key)
    assert done.returncode == 1
    assert done.stdout == "FAIL entries.jsonl: its SHA-256 differs from the manifest's\n"
    (folder / layout.MANIFEST).write_bytes(
        NoteSigner.generate(ORIGIN).sign(layout.manifest_text(_digests(folder)))
    )
    done = go(verifypack, folder, made.verifier_key)
    assert done.returncode == 1
    assert done.stdout == f"FAIL {folder / layout.MANIFEST}: note has no verifiable signatures\n"


def test_go_refuses_a_proof_that_does_not_lead_to_the_root(
    verifypack: Path, made: Made, folder: Path
) -> None:
    """A proof hash changed under a manifest signed by the log's key: Go's tlog names the seq."""
    proofs = (folder / layout.INCLUSION).read_bytes().splitlines(keepends=True)
    item = json.loads(proofs[0])
    item["hashes"][0] = "C" * 43 + "="
    proofs[0] = json.dumps(item).encode() + b"\n"
    (folder / layout.INCLUSION).write_bytes(b"".join(proofs))
    _resign(made, folder)
    done = go(verifypack, folder, made.verifier_key)
    assert done.returncode == 1
    assert done.stdout.startswith(f"FAIL seq {item['seq']}: ")


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and p.name != layout.MANIFEST
    }


def _resign(made: Made, folder: Path) -> None:
    """What only the key holder can do: sign a manifest over the files as they now are."""
    (folder / layout.MANIFEST).write_bytes(made.signer.sign(layout.manifest_text(_digests(folder))))


def test_sha256sum_checks_the_files_against_the_manifest(folder: Path) -> None:
    """The docs' coreutils line passes on the pack and fails once a file changed."""
    line = next(text.removeprefix("$ ") for text in _console_lines() if "sha256sum" in text)
    run = ["bash", "-c", line.replace("cd pack", f"cd {folder}")]
    assert subprocess.run(run, capture_output=True, check=False).returncode == 0
    (folder / layout.MODELS).write_text("{}\n")
    failed = subprocess.run(run, capture_output=True, text=True, check=False)
    assert failed.returncode != 0
    assert "models.json: FAILED" in failed.stdout


def _console_lines() -> list[str]:
    return [
        line
        for found in re.findall(r"^```console\n(.*?)^```$", DOC.read_text(), flags=re.MULTILINE | re.DOTALL)
        for line in found.splitlines()
    ]


def test_duckdb_compares_the_parquet_copy_with_the_json_lines(folder: Path) -> None:
    """The docs' SQL finds no differing row in the pack, and one in a Parquet file with one row changed."""
    sql = block("sql")

    def differing() -> int:
        connection = duckdb.connect()
        try:
            cwd = Path.cwd()
            os.chdir(folder)
            try:
                statements = [s for s in sql.split(";") if s.strip()]
                for statement in statements[:-1]:
                    connection.execute(statement)
                result = connection.execute(statements[-1]).fetchone()
            finally:
                os.chdir(cwd)
        finally:
            connection.close()
        assert result is not None
        return int(result[0])

    assert differing() == 0
    rows = [PackRow(**json.loads(line)) for line in (folder / layout.ENTRIES_JSONL).read_bytes().splitlines()]
    rows[3] = PackRow(**{**rows[3].as_dict(), "ts": "2000-01-01T00:00:00Z"})
    (folder / layout.ENTRIES_PARQUET).unlink()
    write_parquet(rows, folder / layout.ENTRIES_PARQUET)
    assert differing() == 2
