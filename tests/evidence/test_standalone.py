"""The standalone verifier: one file an auditor runs with Python and `cryptography`, nothing of inferlog.

It imports only the standard library and `cryptography` (checked on its source), runs as a script
from a bare folder, and its own Merkle, note and Parquet code agrees with inferlog's and pyarrow's.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inferlog.evidence import layout, standalone
from inferlog.evidence.rows import PackRow, parquet_schema, write_parquet
from inferlog.ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from inferlog.ledger.hashing import leaf_hash
from inferlog.ledger.merkle import LeafList, consistency_proof, inclusion_proof, root_of
from tests.evidence.conftest import Made

SOURCE = Path(standalone.__file__)


def test_it_imports_only_the_standard_library_and_cryptography() -> None:
    """Every import in the file is a standard-library module or `cryptography`."""
    tree = ast.parse(SOURCE.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would need its package"
            found.add((node.module or "").split(".")[0])
    outside = found - set(sys.stdlib_module_names) - {"cryptography"}
    assert not outside, f"the standalone verifier imports {sorted(outside)}"
    assert "cryptography" in found
    assert "inferlog" not in found


def test_every_pack_carries_the_verifier_byte_for_byte(pack: Path) -> None:
    """verify_pack.py in a pack is this very file."""
    with zipfile.ZipFile(pack) as zipped:
        assert zipped.read(layout.VERIFIER_SCRIPT) == SOURCE.read_bytes()


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which only the standard library and `cryptography` can be imported."""
    import cryptography

    site = Path(cryptography.__file__).parent.parent
    bare = tmp_path_factory.mktemp("bare-site")
    for name in os.listdir(site):
        if name.startswith(("cryptography", "cffi", "_cffi_backend", "pycparser")):
            (bare / name).symlink_to(site / name)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(bare)}


def _run_script(
    script: Path, pack: Path, key: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The script run with -S (no site-packages) and a PYTHONPATH that holds only `cryptography`."""
    return subprocess.run(
        [sys.executable, "-S", str(script), str(pack), "--key", key],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_script_verifies_a_good_pack_and_fails_a_tampered_one(
    made: Made, pack: Path, tmp_path: Path, bare_env: dict[str, str]
) -> None:
    """Run as `python verify_pack.py`, outside inferlog's environment: exit 0 on the pack, 1 naming the problem."""
    folder = tmp_path / "pack"
    with zipfile.ZipFile(pack) as zipped:
        zipped.extractall(folder)
    script = tmp_path / "verify_pack.py"
    shutil.copy(folder / layout.VERIFIER_SCRIPT, script)
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import inferlog"], env=bare_env, capture_output=True, check=False
    )
    assert probe.returncode != 0, "the bare environment can import inferlog: the test would prove nothing"
    good = _run_script(script, pack, made.verifier_key, tmp_path, bare_env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith(f"OK {pack.name}: manifest signed by evidence.test/log")
    key_file = tmp_path / "log.pub"
    key_file.write_text(made.verifier_key + "\n")
    assert _run_script(script, folder, str(key_file), tmp_path, bare_env).returncode == 0
    (folder / layout.MODELS).write_text("{}\n")
    bad = _run_script(script, folder, made.verifier_key, tmp_path, bare_env)
    assert bad.returncode == 1
    assert "FAIL models.json: its SHA-256 differs from the manifest's (the file was changed)" in bad.stdout
    assert "NOT VERIFIED" in bad.stdout


def test_misuse_is_exit_code_2(pack: Path, tmp_path: Path, bare_env: dict[str, str]) -> None:
    """A key that is not one, or no pack there: exit code 2 with one line, not a traceback."""
    done = _run_script(SOURCE, pack, "not-a-key", tmp_path, bare_env)
    assert done.returncode == 2
    assert done.stdout.startswith("error: cannot use the key")
    signer = NoteSigner.generate("x.example/log")
    done = _run_script(SOURCE, tmp_path / "nothing.zip", signer.verifier_key_string(), tmp_path, bare_env)
    assert done.returncode == 2
    assert "no pack at" in done.stdout
    assert "Traceback" not in done.stderr


def test_keys_and_notes_agree_with_inferlog() -> None:
    """Keys whose base64 holds '+' parse; notes inferlog signs open; a changed text or another key does not."""
    for i in range(40):
        signer = NoteSigner.generate(f"log{i}.example/x")
        key = standalone.Key(signer.verifier_key_string())
        note = sign_checkpoint(Checkpoint(signer.name, i + 1, bytes(range(32))), signer)
        assert standalone.open_checkpoint(note, key) == (i + 1, bytes(range(32)))
        with pytest.raises(standalone.Bad):
            standalone.open_note(note.replace(b"\n" + str(i + 1).encode() + b"\n", b"\n99999\n", 1), key)
        other = standalone.Key(NoteSigner.generate(signer.name).verifier_key_string())
        with pytest.raises(standalone.Bad, match="no signature by the key"):
            standalone.open_note(note, other)
    assert any("+" in NoteSigner.generate("k").verifier_key_string().split("+", 2)[2] for _ in range(200))


def test_merkle_proofs_agree_with_the_ledger() -> None:
    """Every inclusion proof and consistency proof of trees up to 40 leaves checks; a changed one does not."""
    leaves = [leaf_hash(bytes([i])) for i in range(40)]
    for size in range(1, 41):
        tree = LeafList(leaves[:size])
        root = root_of(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(index, size, tree)
            standalone.verify_inclusion(index, size, leaves[index], proof, root)
            with pytest.raises(standalone.Bad):
                standalone.verify_inclusion(index, size, leaves[(index + 1) % 40], proof, root)
        for first in range(1, size):
            proof = consistency_proof(first, size, tree)
            old = root_of(leaves[:first])
            standalone.verify_consistency(first, size, old, root, proof)
            with pytest.raises(standalone.Bad):
                standalone.verify_consistency(first, size, leaf_hash(b"other"), root, proof)


def test_its_parquet_reader_reads_what_pyarrow_wrote(tmp_path: Path) -> None:
    """25,000 rows (three row groups, several pages per column), nulls, non-ASCII text: read as pyarrow reads them."""
    rng = random.Random(7)
    rows = []
    for seq in range(1, 25_001):
        erased = rng.random() < 0.2
        text = "".join(rng.choice('aé€😀\n"\\x') for _ in range(rng.randrange(0, 300)))
        rows.append(PackRow(
            seq=seq, id=f"id-{seq}", kind="inference", system="s", ts=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat(),
            leaf=text, leaf_hash=base64.b64encode(bytes(32)).decode(),
            salt=None if erased else "c2FsdA==", body=None if erased else text[::-1],
        ))  # fmt: skip
    path = tmp_path / "entries.parquet"
    write_parquet(rows, path)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    files = standalone.Files(tmp_path)
    mine = list(standalone.parquet_rows(files, "entries.parquet"))
    assert mine == pq.read_table(path).to_pylist()
    assert mine == [row.as_dict() for row in rows]


def test_its_parquet_reader_refuses_what_inferlog_never_writes(tmp_path: Path) -> None:
    """A compressed or dictionary-encoded Parquet file is refused, not misread."""
    table = pa.Table.from_pylist(
        [PackRow(1, "i", "k", "s", "t", "l", "h", None, None).as_dict()], schema=parquet_schema()
    )
    pq.write_table(table, tmp_path / "entries.parquet", compression="snappy")
    with pytest.raises(standalone.Bad, match="compressed or dictionary-encoded"):
        list(standalone.parquet_rows(standalone.Files(tmp_path), "entries.parquet"))
