"""Tampered packs fail, and say what is wrong: with inferlog's verifier and with the standalone one.

Every change an attacker without the log's key can make: a byte of any file, any byte of the zip
around them, an entry dropped, two swapped, one added, a whole consistent rewrite under a manifest
re-signed by another key, and a pack of another log.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from inferlog.evidence import Selection, build_pack, layout, verify_pack
from inferlog.evidence.container import write_zip
from inferlog.evidence.rows import PackRow, write_parquet
from inferlog.evidence.standalone import main as standalone_main
from inferlog.ledger.checkpoint import NoteSigner, NoteVerifier
from tests.evidence.conftest import ORIGIN, SINCE, UNTIL, Made, make_log

Verify = Callable[[Path, str], tuple[bool, str]]


def with_inferlog(path: Path, key: str) -> tuple[bool, str]:
    report = verify_pack(path, [NoteVerifier.from_key_string(key)])
    return report.ok, "\n".join(str(problem) for problem in report.problems)


def with_standalone(path: Path, key: str) -> tuple[bool, str]:
    out = io.BytesIO()
    code = standalone_main([str(path), "--key", key], out=out)
    assert code in (0, 1), out.getvalue()
    return code == 0, out.getvalue().decode()


@pytest.fixture(params=["inferlog", "standalone"])
def verify(request: pytest.FixtureRequest) -> Verify:
    """Each test runs with both verifiers: they must agree on every pack."""
    return with_inferlog if request.param == "inferlog" else with_standalone


def unpack(pack: Path, folder: Path) -> Path:
    with zipfile.ZipFile(pack) as zipped:
        zipped.extractall(folder)
    return folder


def repack(folder: Path, out: Path) -> Path:
    """A zip of the folder, laid out as inferlog writes one: only the contents differ."""
    out.unlink(missing_ok=True)
    write_zip(folder, [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()], out)
    return out


def lines(folder: Path, name: str) -> list[bytes]:
    return (folder / name).read_bytes().splitlines(keepends=True)


def seq_of(line: bytes) -> int:
    seq: int = json.loads(line)["seq"]
    return seq


def test_the_good_pack_verifies_as_zip_and_folder(
    made: Made, pack: Path, folder_copy: Path, verify: Verify
) -> None:
    """The untouched pack passes, whether zipped or unpacked into a folder."""
    for path in (pack, folder_copy):
        ok, text = verify(path, made.verifier_key)
        assert ok, text


def _members(pack: Path) -> list[str]:
    with zipfile.ZipFile(pack) as zipped:
        return zipped.namelist()


def test_a_flipped_byte_in_any_file_is_found_and_named(
    made: Made, pack_copy: Path, tmp_path: Path, verify: Verify
) -> None:
    """For every file of the pack, zipped or in a folder: one byte changed fails, naming that file."""
    original = pack_copy.read_bytes()
    folder = unpack(pack_copy, tmp_path / "folder")
    with zipfile.ZipFile(pack_copy) as zipped:
        infos = zipped.infolist()
    for info in infos:
        data_at = info.header_offset + 30 + len(info.filename)
        flipped = bytearray(original)
        flipped[data_at + info.file_size // 2] ^= 0x01
        pack_copy.write_bytes(bytes(flipped))
        ok, text = verify(pack_copy, made.verifier_key)
        assert not ok, f"a flipped byte in {info.filename} (zip) went unnoticed"
        assert info.filename in text, text
        path = folder / info.filename
        kept = path.read_bytes()
        changed = bytearray(kept)
        changed[len(changed) // 2] ^= 0x01
        path.write_bytes(bytes(changed))
        ok, text = verify(folder, made.verifier_key)
        assert not ok, f"a flipped byte in {info.filename} (folder) went unnoticed"
        assert info.filename in text, text
        path.write_bytes(kept)
    pack_copy.write_bytes(original)
    assert verify(pack_copy, made.verifier_key)[0]


def test_every_byte_of_the_zip_outside_the_files_is_guarded(
    made: Made, pack_copy: Path, verify: Verify
) -> None:
    """Each byte of every local header, central directory entry and the end record, flipped: the pack fails."""
    original = pack_copy.read_bytes()
    with zipfile.ZipFile(pack_copy) as zipped:
        infos = zipped.infolist()
    structure: list[int] = []
    for info in infos:
        structure += range(info.header_offset, info.header_offset + 30 + len(info.filename))
    directory = infos[-1].header_offset + 30 + len(infos[-1].filename) + infos[-1].file_size
    structure += range(directory, len(original))
    for offset in structure:
        flipped = bytearray(original)
        flipped[offset] ^= 0x01
        pack_copy.write_bytes(bytes(flipped))
        ok, _ = verify(pack_copy, made.verifier_key)
        assert not ok, f"a flipped byte at {offset} of the zip went unnoticed"
    pack_copy.write_bytes(original + b"\x00")
    ok, text = verify(pack_copy, made.verifier_key)
    assert not ok
    assert "bytes follow the end record" in text


def test_a_dropped_entry_is_named(made: Made, pack: Path, tmp_path: Path, verify: Verify) -> None:
    """One line removed from entries.jsonl: the file's hash, and the seq whose proof has no entry."""
    folder = unpack(pack, tmp_path / "f")
    entries = lines(folder, layout.ENTRIES_JSONL)
    dropped = entries.pop(10)
    (folder / layout.ENTRIES_JSONL).write_bytes(b"".join(entries))
    ok, text = verify(repack(folder, tmp_path / "p.zip"), made.verifier_key)
    assert not ok
    assert "entries.jsonl: its SHA-256 differs from the manifest's (the file was changed)" in text
    assert (
        f"seq {seq_of(dropped)}: has an inclusion proof but is not in entries.jsonl (entry dropped)" in text
    )


def test_two_swapped_entries_are_named(made: Made, pack: Path, tmp_path: Path, verify: Verify) -> None:
    """Two lines swapped: out of order at the line that moved, and entries.parquet no longer matches."""
    folder = unpack(pack, tmp_path / "f")
    entries = lines(folder, layout.ENTRIES_JSONL)
    entries[20], entries[21] = entries[21], entries[20]
    (folder / layout.ENTRIES_JSONL).write_bytes(b"".join(entries))
    ok, text = verify(repack(folder, tmp_path / "p.zip"), made.verifier_key)
    assert not ok
    assert (
        f"entries.jsonl line 22: seq {seq_of(entries[21])} comes after seq {seq_of(entries[20])}: out of order"
        in text
    )
    assert "entries.parquet: row 21" in text


def test_an_added_entry_is_named(made: Made, pack: Path, tmp_path: Path, verify: Verify) -> None:
    """A real entry of the same log added to a subject's pack: it has no inclusion proof there."""
    store = made.open()
    try:
        alice = tmp_path / "alice.zip"
        build_pack(store, Selection("credit", SINCE, UNTIL, subject=made.refs["alice"]), made.signer, alice)
    finally:
        store.close()
    folder = unpack(alice, tmp_path / "f")
    mine = lines(folder, layout.ENTRIES_JSONL)
    seqs = {seq_of(line) for line in mine}
    intruder = next(
        line
        for line in lines(unpack(pack, tmp_path / "all"), layout.ENTRIES_JSONL)
        if seq_of(line) not in seqs
    )
    merged = sorted([*mine, intruder], key=seq_of)
    (folder / layout.ENTRIES_JSONL).write_bytes(b"".join(merged))
    ok, text = verify(repack(folder, tmp_path / "p.zip"), made.verifier_key)
    assert not ok
    assert f"seq {seq_of(intruder)}: in entries.jsonl but has no inclusion proof (entry added)" in text
    dup = tmp_path / "dup"
    shutil.copytree(folder, dup)
    (dup / layout.ENTRIES_JSONL).write_bytes(b"".join([*mine, mine[-1]]))
    ok, text = verify(dup, made.verifier_key)
    assert not ok
    assert f"seq {seq_of(mine[-1])} appears twice (an entry was added)" in text


def test_an_edited_payload_is_named(made: Made, pack: Path, tmp_path: Path, verify: Verify) -> None:
    """A body changed (even with a matching Parquet copy): its commitment names the seq."""
    folder = unpack(pack, tmp_path / "f")
    entries = lines(folder, layout.ENTRIES_JSONL)
    index = next(
        i
        for i, line in enumerate(entries)
        if json.loads(line)["kind"] == "feedback" and json.loads(line)["body"]
    )
    row = json.loads(entries[index])
    row["body"] = row["body"].replace('"reviewer"', '"someone-else"')
    entries[index] = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    (folder / layout.ENTRIES_JSONL).write_bytes(b"".join(entries))
    (folder / layout.ENTRIES_PARQUET).unlink()
    write_parquet((PackRow(**json.loads(line)) for line in entries), folder / layout.ENTRIES_PARQUET)
    ok, text = verify(folder, made.verifier_key)
    assert not ok
    assert (
        f"seq {row['seq']}: its body does not match the commitment in its leaf (the payload was changed)"
        in text
    )
    assert "entries.parquet: row" not in text  # the copies agree; the commitment is what catches it


def test_a_rewrite_under_a_forged_manifest_is_named(
    made: Made, pack: Path, tmp_path: Path, verify: Verify
) -> None:
    """Entry dropped everywhere (JSONL, Parquet, proofs, counts) and the manifest re-signed by an attacker's
    key of the same name: every file agrees with the forged manifest, so its signature is what fails."""
    folder = unpack(pack, tmp_path / "f")
    entries = lines(folder, layout.ENTRIES_JSONL)
    dropped = entries.pop(5)
    (folder / layout.ENTRIES_JSONL).write_bytes(b"".join(entries))
    proofs = [line for line in lines(folder, layout.INCLUSION) if seq_of(line) != seq_of(dropped)]
    (folder / layout.INCLUSION).write_bytes(b"".join(proofs))
    (folder / layout.ENTRIES_PARQUET).unlink()
    write_parquet((PackRow(**json.loads(line)) for line in entries), folder / layout.ENTRIES_PARQUET)
    info = json.loads((folder / layout.PACK_INFO).read_bytes())
    info["entries"]["count"] -= 1
    kind = json.loads(dropped)["kind"]
    info["entries"]["by_kind"][kind] -= 1
    info["entries"]["erased"] -= json.loads(dropped)["body"] is None
    (folder / layout.PACK_INFO).write_text(json.dumps(info, indent=2) + "\n")
    attacker = NoteSigner.generate(ORIGIN)
    digests = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and p.name != layout.MANIFEST
    }
    (folder / layout.MANIFEST).write_bytes(attacker.sign(layout.manifest_text(digests)))
    ok, text = verify(folder, made.verifier_key)
    assert not ok
    assert "manifest.note: its signature does not verify with the key you gave" in text
    assert "SHA-256 differs" not in text  # the forged manifest lists the forged files: only the key tells


def test_a_pack_of_another_log_is_refused(made: Made, tmp_path: Path, verify: Verify) -> None:
    """A pack built and signed by another key (same origin name) does not verify with this log's key."""
    other = make_log(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    store = other.open()
    try:
        out = tmp_path / "other.zip"
        build_pack(store, Selection("credit", SINCE, UNTIL), other.signer, out)
    finally:
        store.close()
    assert verify(out, other.verifier_key)[0]
    ok, text = verify(out, made.verifier_key)
    assert not ok
    assert "manifest.note: its signature does not verify with the key you gave" in text
    assert "checkpoint.note: does not verify with the key you gave" in text
    assert "verifier.key: the pack names" in text


def test_a_missing_or_added_file_is_named(made: Made, folder_copy: Path, verify: Verify) -> None:
    """A file removed, or one added beside the others: each is named."""
    (folder_copy / layout.POLICY).unlink()
    (folder_copy / "extra.txt").write_text("planted")
    ok, text = verify(folder_copy, made.verifier_key)
    assert not ok
    assert "policy.json: listed in the manifest but missing from the pack (removed)" in text
    assert "extra.txt: in the pack but not in the manifest (added)" in text


def test_a_broken_consistency_proof_is_named(made: Made, folder_copy: Path, verify: Verify) -> None:
    """A consistency proof with one hash changed: the earlier checkpoint it was for is named."""
    line = json.loads((folder_copy / layout.CONSISTENCY).read_bytes().splitlines()[0])
    line["hashes"][0] = line["hashes"][-1] if len(line["hashes"]) > 1 else "A" * 43 + "="
    line["hashes"][-1] = "B" * 43 + "="
    (folder_copy / layout.CONSISTENCY).write_text(json.dumps(line) + "\n")
    ok, text = verify(folder_copy, made.verifier_key)
    assert not ok
    assert f"{line['old_checkpoint']}: is not consistent with checkpoint" in text


def test_an_inclusion_proof_for_another_root_is_named(made: Made, folder_copy: Path, verify: Verify) -> None:
    """One hash of one inclusion proof changed: that entry's seq is named."""
    proofs = (folder_copy / layout.INCLUSION).read_bytes().splitlines(keepends=True)
    item = json.loads(proofs[3])
    item["hashes"][0] = "C" * 43 + "="
    proofs[3] = json.dumps(item).encode() + b"\n"
    (folder_copy / layout.INCLUSION).write_bytes(b"".join(proofs))
    ok, text = verify(folder_copy, made.verifier_key)
    assert not ok
    assert f"seq {item['seq']}: its inclusion proof does not lead to checkpoint" in text


def _leaf_hash_b64(leaf: str) -> str:
    import base64

    from inferlog.ledger.hashing import leaf_hash

    return base64.b64encode(leaf_hash(leaf.encode("utf-8", "surrogatepass"))).decode()


@pytest.mark.parametrize(
    "case", ["leaf-not-object", "lone-surrogate", "consistency-name-not-text", "checkpoint-not-object"]
)
def test_well_formed_json_of_the_wrong_shape_fails_without_a_traceback(
    made: Made, folder_copy: Path, verify: Verify, case: str
) -> None:
    """Valid JSON that is not what a pack holds (a list for a leaf, a lone surrogate, a list for a name) is a finding, not a crash."""
    if case in ("leaf-not-object", "lone-surrogate"):
        rows = lines(folder_copy, layout.ENTRIES_JSONL)
        row = json.loads(rows[0])
        if case == "leaf-not-object":
            row["leaf"] = "[1]"
            row["leaf_hash"] = _leaf_hash_b64("[1]")
        else:
            row["leaf"] = "\ud800"
        rows[0] = json.dumps(row).encode() + b"\n"  # json.dumps writes the surrogate as \ud800
        (folder_copy / layout.ENTRIES_JSONL).write_bytes(b"".join(rows))
        named = f"{layout.ENTRIES_JSONL}" if case == "lone-surrogate" else f"seq {row['seq']}"
    elif case == "consistency-name-not-text":
        item = json.loads(lines(folder_copy, layout.CONSISTENCY)[0])
        item["old_checkpoint"] = ["x"]
        (folder_copy / layout.CONSISTENCY).write_text(json.dumps(item) + "\n")
        named = f"{layout.CONSISTENCY} line 1"
    else:
        info = json.loads((folder_copy / layout.PACK_INFO).read_bytes())
        info["checkpoint"] = "x"
        (folder_copy / layout.PACK_INFO).write_text(json.dumps(info))
        named = layout.PACK_INFO
    ok, text = verify(folder_copy, made.verifier_key)
    assert not ok
    assert named in text
