"""Our checkpoints and proofs, checked by an independent implementation: Go's sumdb/note and sumdb/tlog.

A verifier that only agrees with itself proves little. `go_checker.go` (beside this file) feeds our
signed notes, verifier keys, inclusion and consistency proofs to Go's reference code, which must
accept every honest one and reject every tampered one; and Go, signing with our key string, must
produce byte for byte the note we produce. It is built offline from Debian's packaged source:

    apt-get install -y golang-go golang-golang-x-mod-dev

The test never skips: without Go it fails, saying how to install it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, public_key_path
from inferlog.integrity.tree import consistency, inclusion, root_at
from inferlog.ledger.checkpoint import Checkpoint, NoteSigner, open_checkpoint, sign_checkpoint
from inferlog.store import Store, open_store
from inferlog.testing import make_record, prepare
from tests.helpers import backend_url

GO_SOURCE = Path("/usr/share/gocode")  # where golang-golang-x-mod-dev puts golang.org/x/mod
INSTALL = "apt-get update && apt-get install -y golang-go golang-golang-x-mod-dev"
CHECKPOINT_SIZES = (1, 2, 255, 256, 257, 511, 600)
SIZE = 600

Case = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def go_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """go_checker.go built with Go's own sumdb packages, offline (GOPATH mode, Debian's source)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"Go is not installed; the interop test needs it: {INSTALL}")
    if not (GO_SOURCE / "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.fail(f"golang.org/x/mod is not in {GO_SOURCE}; the interop test needs it: {INSTALL}")
    folder = tmp_path_factory.mktemp("go")
    shutil.copy(Path(__file__).with_name("go_checker.go"), folder / "main.go")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "GO111MODULE": "off",  # no module proxy, no network: imports come from GOPATH
        "GOPATH": str(GO_SOURCE),
        "GOCACHE": str(folder / "cache"),
        "GOFLAGS": "",
    }
    built = subprocess.run(
        [go, "build", "-o", str(folder / "checker"), "main.go"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, f"building the Go checker failed:\n{built.stderr}"
    return folder / "checker"


def _go(checker: Path, cases: list[Case]) -> list[str]:
    """Ask the Go checker about each case: "ok..." or "error: ..."."""
    done = subprocess.run(
        [str(checker)], input=json.dumps(cases), capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results: list[str] = json.loads(done.stdout)
    assert len(results) == len(cases)
    return results


@dataclass
class Log:
    store: Store
    signer: NoteSigner
    vkey: str
    leaves: list[bytes]


@pytest.fixture(params=["sqlite", "postgresql"])
def signed_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    """600 entries (across tile boundaries) with checkpoints at sizes around 256, on each backend."""
    url = backend_url(request, tmp_path / "log.db")
    store = open_store(url)
    key_path = tmp_path / "signer.key"
    signer = init_signer(key_path, origin="interop.test/log")
    checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, key_path))
    for size in range(1, SIZE + 1):
        store.append(prepare(make_record(output={"n": size})))
        if size in CHECKPOINT_SIZES:
            checkpointer.checkpoint()
    leaves = [row.leaf for row in store.ledger_rows(0, SIZE)]
    yield Log(store, signer, public_key_path(key_path).read_text().strip(), leaves)
    store.close()


def _note_case(vkey: str, note: bytes) -> Case:
    return {"op": "note", "key": vkey, "note": note.decode()}


def test_go_opens_our_checkpoints_and_refuses_forged_ones(go_checker: Path, signed_log: Log) -> None:
    """Go's note.Open accepts every checkpoint we signed, reads the same tree head, and refuses tampered notes."""
    kept = signed_log.store.checkpoints()
    assert [c.size for c in kept] == list(CHECKPOINT_SIZES)
    honest = [_note_case(signed_log.vkey, c.note) for c in kept]
    expected = [f"ok interop.test/log\n{c.size}\n{_b64(c.root)}" for c in kept]
    note = kept[-1].note
    stranger = NoteSigner.generate("interop.test/log")  # same name, another key
    forged = [
        note.replace(b"\n600\n", b"\n601\n"),  # another size
        note.replace(_b64(kept[-1].root).encode(), _b64(b"\x01" * 32).encode()),  # another root
        note.replace(b"interop.test/log\n", b"interop.test/lag\n", 1),  # another origin
        sign_checkpoint(Checkpoint("interop.test/log", SIZE, kept[-1].root), stranger),
        note[:-10] + b"AAAAAAAAA\n",  # a damaged signature
    ]
    results = _go(go_checker, honest + [_note_case(signed_log.vkey, n) for n in forged])
    assert results[: len(honest)] == expected
    for forgery, result in zip(forged, results[len(honest) :], strict=True):
        assert result.startswith("error:"), (forgery, result)


def test_go_signs_the_same_bytes_with_our_key(go_checker: Path, tmp_path: Path) -> None:
    """Given our signer key string, Go's note.Sign makes byte for byte the note we make, and we open Go's."""
    signer = init_signer(tmp_path / "k.key", origin="interop.test/log")
    checkpoints = [
        Checkpoint("interop.test/log", 0, b"\x00" * 32),
        Checkpoint("interop.test/log", 2**63 - 1, bytes(range(32))),
        Checkpoint("a log with spaces+plus", 7, b"\x07" * 32, ("an extension line", "another")),
    ]
    cases = [{"op": "sign", "key": signer.to_key_string(), "text": c.body().decode()} for c in checkpoints]
    for checkpoint, go_note in zip(checkpoints, _go(go_checker, cases), strict=True):
        assert go_note.encode() == sign_checkpoint(checkpoint, signer)
        assert open_checkpoint(go_note.encode(), [signer.verifier()], origin=checkpoint.origin) == checkpoint


def test_go_checks_our_inclusion_proofs(go_checker: Path, signed_log: Log) -> None:
    """Go's tlog.CheckRecord accepts our inclusion proofs for many (leaf, size) pairs and refuses altered ones."""
    store, leaves = signed_log.store, signed_log.leaves
    honest: list[Case] = []
    for size in CHECKPOINT_SIZES:
        root = _b64(root_at(store, size))
        for seq in sorted({1, 2, size // 2 or 1, 255, 256, 257, size} & set(range(1, size + 1))):
            proof = [_b64(h) for h in inclusion(store, seq, size)]
            case: Case = {
                "op": "inclusion",
                "size": size,
                "root": root,
                "index": seq - 1,
                "leaf": _b64(leaves[seq - 1]),
            }
            honest.append(case | {"proof": proof})
    altered: list[Case] = []
    for case in honest:
        if case["size"] < 2:
            continue
        altered.append(case | {"leaf": _b64(leaves[case["index"]] + b" ")})  # another leaf
        altered.append(case | {"index": (case["index"] + 1) % case["size"]})  # another position
        altered.append(case | {"root": _b64(b"\x02" * 32)})  # another root
        altered.append(case | {"proof": [_b64(b"\x03" * 32), *case["proof"][1:]]})  # a forged hash
    results = _go(go_checker, honest + altered)
    assert results[: len(honest)] == ["ok"] * len(honest)
    rejected = [r.startswith("error:") for r in results[len(honest) :]]
    assert all(rejected), [c for c, r in zip(altered, rejected, strict=True) if not r][:3]


def test_go_checks_our_consistency_proofs(go_checker: Path, signed_log: Log) -> None:
    """Go's tlog.CheckTree accepts our consistency proofs between every pair of checkpoints and refuses altered ones."""
    store = signed_log.store
    roots = {size: _b64(root_at(store, size)) for size in CHECKPOINT_SIZES}
    honest: list[Case] = []
    for old in CHECKPOINT_SIZES:
        for new in (s for s in CHECKPOINT_SIZES if s > old):
            proof = [_b64(h) for h in consistency(store, old, new)]
            honest.append(
                {
                    "op": "consistency",
                    "old": old,
                    "oldroot": roots[old],
                    "size": new,
                    "root": roots[new],
                    "proof": proof,
                }
            )
    altered: list[Case] = []
    for case in honest:
        altered.append(case | {"oldroot": _b64(b"\x04" * 32)})  # a forked older tree
        altered.append(case | {"root": _b64(b"\x05" * 32)})  # a forked newer tree
        altered.append(case | {"proof": [*case["proof"][:-1], _b64(b"\x06" * 32)]})  # a forged hash
    results = _go(go_checker, honest + altered)
    assert results[: len(honest)] == ["ok"] * len(honest)
    rejected = [r.startswith("error:") for r in results[len(honest) :]]
    assert all(rejected), [c for c, r in zip(altered, rejected, strict=True) if not r][:3]
