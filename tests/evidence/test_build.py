"""Building packs: what a pack holds for a system, a subject or a model, and when building is refused."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import inferlog
from inferlog.errors import IntegrityError, UsageError
from inferlog.evidence import Selection, build_pack, verify_pack
from inferlog.evidence.standalone import main as standalone
from inferlog.integrity.signing_keys import init_signer
from inferlog.ledger.checkpoint import NoteSigner
from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid7
from inferlog.record.model import AccessEntry
from inferlog.store import Store, open_store
from inferlog.testing import make_record, prepare
from tests.evidence.conftest import CUTOFF, ORIGIN, SINCE, SUBJECTS, UNTIL, Made, make_log
from tests.integrity.tampering import SQLiteTamperer

FILES = {
    "README.txt", "checkpoint.note", "entries.jsonl", "entries.parquet", "manifest.note", "models.json",
    "pack.json", "policy.json", "proofs/consistency.jsonl", "proofs/inclusion.jsonl", "report.html",
    "summary.json", "verifier.key", "verify_pack.py",
}  # fmt: skip


def rows(pack: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(pack) as zipped:
        return [json.loads(line) for line in zipped.read("entries.jsonl").splitlines()]


def member(pack: Path, name: str) -> Any:
    with zipfile.ZipFile(pack) as zipped:
        return json.loads(zipped.read(name))


def build(made: Made, out: Path, **selection: Any) -> Path:
    store = made.open()
    try:
        build_pack(store, Selection("credit", SINCE, UNTIL, **selection), made.signer, out)
    finally:
        store.close()
    return out


def test_a_pack_holds_the_files_it_documents(made: Made, pack: Path) -> None:
    """The zip holds the documented files, the earlier checkpoint among them, and nothing else."""
    with zipfile.ZipFile(pack) as zipped:
        names = set(zipped.namelist())
    earlier = {name for name in names if name.startswith("checkpoints/")}
    assert names - earlier == FILES
    assert earlier == {f"checkpoints/{made.checkpoints[0]:020d}.note"}


def test_the_pack_holds_the_period_and_what_the_log_says_about_it(made: Made, pack: Path) -> None:
    """Every inference of the period (none of another system), their feedback, the reads that could
    have returned them, and the admin entries (policy, erasure, retention)."""
    found = rows(pack)
    inferences = {r["id"] for r in found if r["kind"] == "inference"}
    assert inferences == set(made.in_period())
    assert {r["system"] for r in found} == {"credit", "*"}
    feedback = {r["id"] for r in found if r["kind"] == "feedback"}
    assert feedback == {f for f, about in made.feedback.items() if about in inferences}
    access = [json.loads(r["body"]) for r in found if r["kind"] == "access"]
    assert sorted(a["actor"] for a in access) == [
        "analyst",
        "support-alice",
    ]  # not another model's, admin or old reads
    admin = [json.loads(r["body"])["action"] for r in found if r["kind"] == "admin"]
    assert sorted(admin) == ["policy.changed"] * 3 + ["retention.applied", "subject.erased"]
    assert [r["seq"] for r in found] == sorted(r["seq"] for r in found)


def test_erased_and_purged_entries_are_leaves_without_content(made: Made, pack: Path) -> None:
    """Bob's erased inferences and those purged by retention are in the pack with their leaf and no body."""
    by_id = {r["id"]: r for r in rows(pack)}
    erased = {r[0] for r in made.records if SINCE <= r[1] < UNTIL and (r[2] == "bob" or r[1] < CUTOFF)}
    assert erased
    for entry_id in erased:
        assert by_id[entry_id]["body"] is None
        assert by_id[entry_id]["salt"] is None
        assert json.loads(by_id[entry_id]["leaf"])["id"] == entry_id
    live = [r for r in by_id.values() if r["kind"] == "inference" and r["id"] not in erased]
    assert live
    assert all(r["body"] is not None for r in live)
    summary = member(pack, "summary.json")
    assert summary["inferences"]["erased"] == len(erased)
    report = verify_pack(pack, [made.signer.verifier()])
    assert report.ok, report.problems
    assert report.erased == sum(1 for r in by_id.values() if r["body"] is None)


def test_sealed_payloads_stay_sealed_and_subjects_pseudonymous(pack: Path) -> None:
    """A pack carries bodies as the log committed to them: sealed fields as ciphertext, subjects as pseudonyms."""
    with zipfile.ZipFile(pack) as zipped:
        raw = b"".join(zipped.read(name) for name in zipped.namelist())
    for subject in SUBJECTS:
        assert f'"{subject}"'.encode() not in raw
    live = [json.loads(r["body"]) for r in rows(pack) if r["kind"] == "inference" and r["body"]]
    assert all(body["input"].startswith("ilenc1:") and body["subject"].startswith("pse_") for body in live)


def test_a_subject_pack_holds_their_entries_and_reads_of_them(made: Made, tmp_path: Path) -> None:
    """Alice's pack: her inferences, reads of her or of everyone (not of another subject), the admin entries."""
    out = build(made, tmp_path / "alice.zip", subject=made.refs["alice"])
    found = rows(out)
    live = {r[0] for r in made.records if SINCE <= r[1] < UNTIL and r[2] == "alice" and r[1] >= CUTOFF}
    assert {r["id"] for r in found if r["kind"] == "inference"} == live
    actors = sorted(json.loads(r["body"])["actor"] for r in found if r["kind"] == "access")
    assert actors == ["analyst", "support-alice"]
    assert verify_pack(out, [made.signer.verifier()]).ok


def test_an_erased_subjects_pack_shows_leaves_and_the_erasure(made: Made, tmp_path: Path) -> None:
    """Bob's pack: his erased inferences as leaves, the subject.erased entry, no live review, no read of alice."""
    out = build(made, tmp_path / "bob.zip", subject=made.refs["bob"])
    found = rows(out)
    inferences = [r for r in found if r["kind"] == "inference"]
    assert {r[0] for r in made.records if SINCE <= r[1] < UNTIL and r[2] == "bob"} <= {
        r["id"] for r in inferences
    }
    assert all(r["body"] is None for r in inferences)
    assert all(r["body"] is None for r in found if r["kind"] == "feedback")
    erasures = [
        json.loads(r["body"]) for r in found if r["kind"] == "admin" and '"subject.erased"' in r["body"]
    ]
    assert [e["details"]["subject_ref"] for e in erasures] == [made.refs["bob"]]
    assert "support-alice" not in json.dumps([r["body"] for r in found if r["kind"] == "access"])
    assert verify_pack(out, [made.signer.verifier()]).ok


def test_a_model_pack_holds_only_that_models_inferences(made: Made, tmp_path: Path) -> None:
    """--model of a model that never answered: no inference, and the pack still verifies."""
    out = build(made, tmp_path / "none.zip", model="no-such-model")
    found = rows(out)
    assert not [r for r in found if r["kind"] in ("inference", "feedback")]
    assert member(out, "summary.json")["inferences"]["total"] == 0
    assert verify_pack(out, [made.signer.verifier()]).ok


def test_policy_history_and_model_lineage(pack: Path) -> None:
    """policy.json: the policy in force when the period began and the changes since; models.json: each
    version with its artifact digest and registry URI."""
    policy = member(pack, "policy.json")
    assert policy["in_force_at_start"]["digest"] == "0" * 64
    assert "1" * 64 in [change["digest"] for change in policy["changes"]]
    models = member(pack, "models.json")["models"]
    assert [(m["name"], m["version"]) for m in models] == [("scorer", "1.0"), ("scorer", "2.0")]
    assert models[0]["artifacts"][0]["digest"] == "sha256:" + "10" * 32
    assert models[1]["artifacts"][0]["uri"] == "runs:/2.0"
    summary = member(pack, "summary.json")
    assert summary["feedback"]["overrides"] > 0
    assert 0 < summary["inferences"]["error_rate"] < 1


def test_a_pack_is_deterministic(made: Made, tmp_path: Path) -> None:
    """Built twice at the same time, as a zip and as a folder, every file is byte for byte the same."""
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    store = made.open()
    try:
        for out in (tmp_path / "a.zip", tmp_path / "b.zip", tmp_path / "folder"):
            build_pack(store, Selection("credit", SINCE, UNTIL), made.signer, out, now=now)
    finally:
        store.close()
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as zipped:
        for name in zipped.namelist():
            assert zipped.read(name) == (tmp_path / "folder" / name).read_bytes(), name


@pytest.fixture
def small(tmp_path: Path) -> tuple[Store, NoteSigner, Path]:
    """A plain log of 20 inferences in the period with one checkpoint, its signer and key path."""
    key_path = tmp_path / "keys" / "signer.key"
    signer = init_signer(key_path, origin=ORIGIN)
    store = open_store(f"sqlite:///{tmp_path / 'small.db'}")
    for i in range(20):
        store.append(prepare(make_record(system="credit", ts=SINCE + dt.timedelta(days=i))))
    return store, signer, key_path


def _checkpoint(store: Store, signer: NoteSigner, key_path: Path) -> int:
    from inferlog.integrity.checkpointer import Checkpointer
    from inferlog.integrity.signer import CheckpointSigner

    return Checkpointer(store, CheckpointSigner.beside_key(signer, key_path)).checkpoint().size


def test_a_log_without_a_checkpoint_is_refused(small: tuple[Store, NoteSigner, Path], tmp_path: Path) -> None:
    """No signed checkpoint at all: one clear error, nothing written."""
    store, signer, _ = small
    with pytest.raises(UsageError, match="no signed checkpoint yet: run `inferlog checkpoint`"):
        build_pack(store, Selection("credit", SINCE, UNTIL), signer, tmp_path / "p.zip")
    assert not (tmp_path / "p.zip").exists()
    store.close()


def test_a_period_the_checkpoint_does_not_cover_is_refused(
    small: tuple[Store, NoteSigner, Path], tmp_path: Path
) -> None:
    """An inference of the period logged after the newest checkpoint: refused, naming both seqs; no leftovers."""
    store, signer, key_path = small
    _checkpoint(store, signer, key_path)
    store.append(prepare(make_record(system="credit", ts=SINCE + dt.timedelta(days=3))))
    with pytest.raises(
        UsageError,
        match="no signed checkpoint covers the period's entries yet: the newest covers seq 20, the period runs to seq 21",
    ):
        build_pack(store, Selection("credit", SINCE, UNTIL), signer, tmp_path / "p.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "small.db", "small.db-shm", "small.db-wal"]
    store.close()


def test_related_entries_after_the_checkpoint_are_left_out_and_counted(
    small: tuple[Store, NoteSigner, Path], tmp_path: Path
) -> None:
    """A read logged after the checkpoint is not in the pack; the pack says how many were left out."""
    store, signer, key_path = small
    _checkpoint(store, signer, key_path)
    read = AccessEntry(id=uuid7(), system="credit", ts=SINCE + dt.timedelta(days=1), actor="late", action="query",
                       purpose="audit", query={"system": "credit"}, count=20)  # fmt: skip
    store.append(Pipeline().prepare_all([read]))
    built = build_pack(store, Selection("credit", SINCE, UNTIL), signer, tmp_path / "p.zip")
    assert built.later == 1
    assert built.entries == 20
    assert member(tmp_path / "p.zip", "pack.json")["later_entries_left_out"] == 1
    store.close()


def test_an_existing_out_and_a_missing_folder_are_refused(
    small: tuple[Store, NoteSigner, Path], tmp_path: Path
) -> None:
    """A pack never overwrites anything, and never creates the folder it goes into."""
    store, signer, key_path = small
    _checkpoint(store, signer, key_path)
    (tmp_path / "there.zip").write_bytes(b"keep me")
    with pytest.raises(UsageError, match="exists: a pack is never written over"):
        build_pack(store, Selection("credit", SINCE, UNTIL), signer, tmp_path / "there.zip")
    assert (tmp_path / "there.zip").read_bytes() == b"keep me"
    with pytest.raises(UsageError, match="no folder"):
        build_pack(store, Selection("credit", SINCE, UNTIL), signer, tmp_path / "missing" / "p.zip")
    store.close()


def test_a_signer_whose_key_did_not_sign_the_checkpoint_is_refused(
    small: tuple[Store, NoteSigner, Path], tmp_path: Path
) -> None:
    """The manifest key must be the checkpoint's: another log's key cannot vouch for this one."""
    store, signer, key_path = small
    _checkpoint(store, signer, key_path)
    other = NoteSigner.generate(ORIGIN)
    with pytest.raises(IntegrityError, match="does not verify with the key"):
        build_pack(store, Selection("credit", SINCE, UNTIL), other, tmp_path / "p.zip")
    store.close()


def test_a_changed_store_is_refused_naming_the_seq(
    small: tuple[Store, NoteSigner, Path], tmp_path: Path
) -> None:
    """A body edited in the database after signing: the build stops at that seq instead of writing a bad pack."""
    store, signer, key_path = small
    _checkpoint(store, signer, key_path)
    url = store.url
    store.close()
    SQLiteTamperer(url).execute("UPDATE entries SET body = replace(body, '\"yes\"', '\"no\"') WHERE seq = 7")
    store = open_store(url)
    with pytest.raises(IntegrityError, match="seq 7: its payload does not match the leaf's commitment"):
        build_pack(store, Selection("credit", SINCE, UNTIL), signer, tmp_path / "p.zip")
    assert not (tmp_path / "p.zip").exists()
    store.close()


def test_selection_is_checked() -> None:
    """A period that ends before it starts, naive times, or no system: refused with a clear reason."""
    with pytest.raises(UsageError, match="--since must be before --until"):
        Selection("credit", UNTIL, SINCE)
    with pytest.raises(UsageError, match="timezone-aware"):
        Selection("credit", dt.datetime(2026, 3, 1), UNTIL)  # noqa: DTZ001 - the point of the test
    with pytest.raises(UsageError, match="one system"):
        Selection("*", SINCE, UNTIL)


def test_build_and_verify_round_trip_on_postgresql(pg_url: str, tmp_path: Path, made: Made) -> None:
    """The same log on PostgreSQL gives a pack with the same entries, which both verifiers accept."""
    on_pg = make_log(pg_url, tmp_path / "pg")
    out = tmp_path / "pg.zip"
    store = open_store(pg_url)
    try:
        built = build_pack(store, Selection("credit", SINCE, UNTIL), on_pg.signer, out)
    finally:
        store.close()
    report = verify_pack(out, [on_pg.signer.verifier()])
    assert report.ok, report.problems
    assert report.inclusion == built.entries
    assert report.consistency == 1
    assert standalone([str(out), "--key", on_pg.verifier_key]) == 0
    kinds = member(out, "pack.json")["entries"]["by_kind"]
    sqlite_pack = tmp_path / "sqlite.zip"
    build(made, sqlite_pack)
    assert kinds == member(sqlite_pack, "pack.json")["entries"]["by_kind"]
    shutil.rmtree(tmp_path / "pg", ignore_errors=True)


def test_pack_rows_carry_the_pack_columns_in_order() -> None:
    """A PackRow's fields are the pack's columns, in order: as_dict, the JSON lines and Parquet rely on it."""
    from dataclasses import fields

    from inferlog.evidence.layout import COLUMNS
    from inferlog.evidence.rows import PackRow

    assert tuple(f.name for f in fields(PackRow)) == COLUMNS


def test_a_build_parses_each_leaf_once_and_names_its_version(
    made: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building reads each leaf's JSON once (the row check, the pack row and the summary share it) and
    never parses the JSON lines back to write the Parquet file; the pack says which inferlog built it."""
    parsed: list[str] = []
    real = json.loads

    def counting(text: Any, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller in ("inferlog.evidence.build", "inferlog.evidence.rows", "inferlog.evidence.summary"):
            parsed.append(text if isinstance(text, str) else bytes(text).decode("utf-8", "replace"))
        return real(text, *args, **kwargs)

    store = made.open()
    try:
        monkeypatch.setattr(json, "loads", counting)
        build_pack(store, Selection("credit", SINCE, UNTIL), made.signer, tmp_path / "p.zip")
        monkeypatch.setattr(json, "loads", real)
    finally:
        store.close()
    leaves = [row["leaf"] for row in rows(tmp_path / "p.zip")]
    assert leaves
    for leaf in leaves:
        assert parsed.count(leaf) == 1, "each leaf parsed once"
    assert not [text for text in parsed if text.startswith('{"seq"')], "no JSON line of the pack parsed back"
    assert member(tmp_path / "p.zip", "pack.json")["built_by"] == f"inferlog {inferlog.__version__}"
