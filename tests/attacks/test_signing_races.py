"""Concurrent and multi-process signing: one key never signs two roots for one size, nor moves back.

The attacker here is only bad luck: two threads of one server (the cadence and a POSTed checkpoint),
or several processes sharing one signing key (a CLI `inferlog checkpoint` beside a running server).
Each worker offers heads from two histories that share their first 5 entries, so a signer whose state
moved backwards would sign a fork; the assertions say it never does.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from inferlog.errors import IntegrityError
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_signer, load_verifiers, public_key_path
from inferlog.ledger.checkpoint import NoteVerifier, open_checkpoint
from inferlog.ledger.hashing import leaf_hash
from inferlog.ledger.merkle import CompactRange, LeafList, consistency_proof, root_of
from inferlog.record import uuid7
from inferlog.server import create_app
from inferlog.store import open_store
from inferlog.testing import make_record, prepare
from tests.helpers import answers, backend_url, free_port, wait_for

SHARED = 5  # both histories agree on this many entries
LONGEST = 40
ATTEMPTS = 60

Signed = tuple[int, bytes, bytes]  # size, root, note


def _history(fork: str) -> list[bytes]:
    """Leaf hashes of one history: the same first SHARED leaves, then leaves named by ``fork``."""
    return [
        leaf_hash(f"entry {i}".encode() if i < SHARED else f"{fork} entry {i}".encode())
        for i in range(LONGEST)
    ]


HISTORIES = {"a": _history("a"), "b": _history("b")}


def _attempt(signer: CheckpointSigner, fork: str, size: int) -> Signed | None:
    """Offer the head of ``fork`` at ``size``; None if the signer refused it."""
    leaves = HISTORIES[fork]
    hashes = LeafList(leaves)
    root = root_of(leaves[:size])
    try:
        note = signer.sign(size, root, lambda a, b: consistency_proof(a, b, hashes))
    except IntegrityError:
        return None
    return size, root, note


def _worker(signer: CheckpointSigner, seed: int) -> list[Signed]:
    chance = random.Random(seed)
    signed = []
    for _ in range(ATTEMPTS):
        done = _attempt(signer, chance.choice("ab"), chance.randint(1, LONGEST))
        if done is not None:
            signed.append(done)
    return signed


def _process_worker(key_path: str, seed: int) -> list[Signed]:
    """In a spawned process: its own signer object on the shared key and state file."""
    path = Path(key_path)
    return _worker(CheckpointSigner.beside_key(load_signer(path), path), seed)


def _assert_consistent(
    runs: list[list[Signed]], signer: CheckpointSigner, verifiers: list[NoteVerifier]
) -> None:
    """One root per size, one history past the shared prefix, each worker's sizes never going back."""
    roots: dict[int, set[bytes]] = defaultdict(set)
    for signed in runs:
        sizes = [size for size, _, _ in signed]
        assert sizes == sorted(sizes), f"a worker saw the signer go backwards: {sizes}"
        for size, root, note in signed:
            checkpoint = open_checkpoint(note, verifiers)
            assert (checkpoint.size, checkpoint.root) == (size, root)
            roots[size].add(root)
    assert roots, "nothing was signed at all"
    assert all(len(r) == 1 for r in roots.values()), "two different roots were signed for one size"
    forks = {
        fork
        for size, (root,) in roots.items()
        for fork, leaves in HISTORIES.items()
        if size > SHARED and root_of(leaves[:size]) == root
    }
    assert len(forks) <= 1, "both histories got signatures past their common prefix"
    last = signer.last()
    assert last is not None
    assert last[0] == max(roots), "the signer's state is not the largest size it signed"


def _sign_in_threads(signer_for_thread: Callable[[], CheckpointSigner]) -> list[list[Signed]]:
    """Eight threads run :func:`_worker`, each with the signer ``signer_for_thread`` gives it; no thread may raise."""
    errors: list[BaseException] = []
    runs: list[list[Signed]] = []

    def run(seed: int) -> None:
        try:
            runs.append(_worker(signer_for_thread(), seed))
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return runs


def test_threads_signing_at_once_never_fork_or_go_back(tmp_path: Path) -> None:
    """Eight threads signing heads of two forks through one key never crash, fork, or roll the state back."""
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="race.test/log")
    runs = _sign_in_threads(lambda: CheckpointSigner.beside_key(load_signer(key_path), key_path))
    signer = CheckpointSigner.beside_key(load_signer(key_path), key_path)
    _assert_consistent(runs, signer, load_verifiers([str(public_key_path(key_path))]))


def test_one_signer_object_shared_by_threads(tmp_path: Path) -> None:
    """Threads sharing one CheckpointSigner object (as a server's threads do) never crash or fork."""
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="race.test/log")
    signer = CheckpointSigner.beside_key(load_signer(key_path), key_path)
    runs = _sign_in_threads(lambda: signer)
    _assert_consistent(runs, signer, load_verifiers([str(public_key_path(key_path))]))


def test_processes_sharing_a_key_never_fork_or_go_back(tmp_path: Path) -> None:
    """Four processes signing heads of two forks with one key file never fork or roll its state back."""
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="race.test/log")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        runs = pool.starmap(_process_worker, [(str(key_path), seed) for seed in range(4)])
    signer = CheckpointSigner.beside_key(load_signer(key_path), key_path)
    _assert_consistent(runs, signer, load_verifiers([str(public_key_path(key_path))]))


def _checkpointing_worker(url: str, key_path: str, rounds: int) -> list[int]:
    """In a spawned process: append a few entries and checkpoint, ``rounds`` times; the sizes signed."""
    path = Path(key_path)
    store = open_store(url)
    try:
        checkpointer = Checkpointer(store, CheckpointSigner.beside_key(load_signer(path), path))
        sizes = []
        for _ in range(rounds):
            store.append(prepare(make_record(), make_record()))
            sizes.append(checkpointer.checkpoint().size)
        return sizes
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_checkpointing_one_log_all_succeed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Three processes appending to one log and checkpointing it with one key all succeed, consistently."""
    url = backend_url(request, tmp_path / "log.db", backend)
    open_store(url).close()  # made once, before the workers race to open it
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="race.test/log")
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        runs = pool.starmap(_checkpointing_worker, [(url, str(key_path), 15)] * 3)
    for sizes in runs:
        assert sizes == sorted(sizes)
    store = open_store(url)
    try:
        verifiers = load_verifiers([str(public_key_path(key_path))])
        kept = store.checkpoints()
        assert {c.size for c in kept} == {size for sizes in runs for size in sizes}
        for checkpoint in kept:
            assert open_checkpoint(checkpoint.note, verifiers).root == checkpoint.root
        assert kept[-1].size == store.size() == 90
    finally:
        store.close()


def test_the_two_histories_fork_after_the_shared_prefix() -> None:
    """The drill's premise: both histories have one root up to SHARED entries and different roots after."""
    a, b = HISTORIES["a"], HISTORIES["b"]
    assert root_of(a[:SHARED]) == root_of(b[:SHARED])
    assert root_of(a[: SHARED + 1]) != root_of(b[: SHARED + 1])


# -- the server's cadence ------------------------------------------------------------------------


def _records(n: int) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    model = {"name": "m", "version": "1"}
    return [{"id": uuid7(), "system": "s", "ts": now, "model": model, "output": i} for i in range(n)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_server_signs_every_n_entries_unasked(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A server with a signing key signs after every N entries although nobody POSTs /v1/checkpoint."""
    url = backend_url(request, tmp_path / "log.db", backend)
    store = open_store(url)
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="cadence.test/log")
    checkpointer = Checkpointer(
        store,
        CheckpointSigner.beside_key(load_signer(key_path), key_path),
        every_entries=50,
        every_seconds=3600,
    )
    try:
        with TestClient(create_app(store, auth=False, checkpointer=checkpointer)) as client:
            # Two batches of 60 with N = 50: whenever the cadence looks (after the first batch, or only
            # after the second), a checkpoint of all 120 must follow. Batches smaller than N would let a
            # slow machine's tick fall between them and leave fewer than N new entries behind it.
            for _ in range(2):
                assert client.post("/v1/records", json=_records(60)).status_code == 200
            wait_for(
                lambda: any(c.size == 120 for c in store.checkpoints()),
                "a checkpoint of 120 entries",
                seconds=60,
            )
            note = client.get("/v1/checkpoint").text.encode()
            assert client.post("/v1/records", json=_records(10)).status_code == 200  # fewer than N
        verifiers = load_verifiers([str(public_key_path(key_path))])
        assert open_checkpoint(note, verifiers).size == 120
        assert store.checkpoints()[-1].size == 130  # and one more at shutdown, covering everything
    finally:
        store.close()


def test_server_signs_lone_entries_after_t_seconds(tmp_path: Path) -> None:
    """A few entries, far fewer than N, are signed once they have waited T seconds."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="cadence.test/log")
    checkpointer = Checkpointer(
        store,
        CheckpointSigner.beside_key(load_signer(key_path), key_path),
        every_entries=10**6,
        every_seconds=0.2,
    )
    try:
        with TestClient(create_app(store, auth=False, checkpointer=checkpointer)) as client:
            assert client.post("/v1/records", json=_records(3)).status_code == 200
            wait_for(
                lambda: [c.size for c in store.checkpoints()] == [3],
                "a checkpoint of the 3 entries",
                seconds=60,
            )
    finally:
        store.close()


def test_inferlog_serve_signs_on_its_cadence(tmp_path: Path) -> None:
    """`inferlog serve --signer-key` (a real process) signs every INFERLOG_CHECKPOINT_EVERY entries unasked."""
    db = f"sqlite:///{tmp_path / 'served.db'}"
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="cadence.test/log")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.update(INFERLOG_CHECKPOINT_EVERY="25", INFERLOG_CHECKPOINT_SECONDS="3600")
    command = [sys.executable, "-m", "inferlog", "--db", db, "serve", "--no-auth", "--port", str(port)]
    errors = tmp_path / "serve.stderr"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            [*command, "--signer-key", str(key_path)], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, errors.read_text()
            return answers(f"{base}/healthz")

        wait_for(up, "inferlog serve to come up", seconds=60)
        for _ in range(3):
            assert httpx.post(f"{base}/v1/records", json=_records(20), timeout=30).status_code == 200

        def signed_50() -> bool:
            answer = httpx.get(f"{base}/v1/checkpoint", timeout=5)
            return answer.status_code == 200 and int(answer.text.split("\n")[1]) >= 50

        wait_for(signed_50, "a checkpoint of 50+ entries", seconds=60)
        note = httpx.get(f"{base}/v1/checkpoint", timeout=5).text.encode()
        assert open_checkpoint(note, load_verifiers([str(public_key_path(key_path))])).size >= 50
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


# -- a signer state restored from a backup -------------------------------------------------------------


def test_a_rolled_back_signer_state_cannot_sign_a_fork(tmp_path: Path) -> None:
    """With its state restored to size 5, the signer still refuses a rewritten size 10: the store's own signed checkpoint 10 says no."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    key_path = tmp_path / "signer.key"
    store = open_store(url)
    checkpointer = Checkpointer(
        store, CheckpointSigner.beside_key(init_signer(key_path, origin="race.test/log"), key_path)
    )
    store.append(prepare(*[make_record(output=i) for i in range(5)]))
    checkpointer.checkpoint()
    state = checkpointer.signer.state_path
    backup = state.read_bytes()  # the signer's state at size 5
    store.append(prepare(*[make_record(output=i) for i in range(5, 10)]))
    signed = checkpointer.checkpoint()
    store.close()
    state.write_bytes(backup)  # ...restored from a backup: the signer forgot it signed size 10

    # Someone rewrites entries 6..10 (triggers dropped) and the tree state to match the first 5.
    first_five = CompactRange()
    conn = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    first_five.extend(
        bytes(h) for (h,) in conn.execute("SELECT leaf_hash FROM entries WHERE seq <= 5 ORDER BY seq")
    )
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("DELETE FROM entries WHERE seq > 5")
    conn.execute("UPDATE ledger_state SET size = 5, frontier = ?", (first_five.to_bytes(),))
    conn.close()
    store = open_store(url)
    try:
        store.append(prepare(*[make_record(output=f"forged {i}") for i in range(5)]))
        assert store.tree().size == 10
        assert store.tree().root() != signed.root
        checkpointer = Checkpointer(store, CheckpointSigner.beside_key(load_signer(key_path), key_path))
        with pytest.raises(IntegrityError, match="checkpoint 10"):
            checkpointer.checkpoint()
        assert [c.root for c in store.checkpoints() if c.size == 10] == [signed.root]
    finally:
        store.close()


def test_the_cadence_reports_a_log_smaller_than_its_key_already_signed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server whose log was rolled back below what its key signed says so on the cadence (it stayed silent, signing nothing, forever)."""
    from inferlog.integrity.checkpointer import CheckpointCadence

    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="cadence.test/log")
    try:
        store.append(prepare(*(make_record() for _ in range(10))))
        Checkpointer(store, CheckpointSigner.beside_key(load_signer(key_path), key_path)).checkpoint()
        store.close()
        (tmp_path / "log.db").unlink()  # an older backup, here an empty one, restored under the server
        store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
        store.append(prepare(*(make_record() for _ in range(3))))
        checkpointer = Checkpointer(
            store, CheckpointSigner.beside_key(load_signer(key_path), key_path), every_seconds=0
        )
        cadence = CheckpointCadence(checkpointer)
        with caplog.at_level("ERROR", logger="inferlog"):
            assert cadence.tick() is None
            assert cadence.tick() is None
        assert cadence.failures == 2
        said = [r.getMessage() for r in caplog.records if "rolled back" in r.getMessage()]
        assert len(said) == 1, caplog.text  # once, not once a second
        assert store.checkpoints() == []
    finally:
        store.close()


def test_an_sdk_log_rolled_back_below_its_signed_size_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An SDK log with a signing key whose log is smaller than what the key signed counts each refusal and logs it once, not a traceback per delivery."""
    import inferlog

    key_path, url = tmp_path / "signer.key", f"sqlite:///{tmp_path / 'log.db'}"
    init_signer(key_path, origin="cadence.test/log")
    store = open_store(url)
    store.append(prepare(*(make_record() for _ in range(50))))
    Checkpointer(store, CheckpointSigner.beside_key(load_signer(key_path), key_path)).checkpoint()
    store.close()
    (tmp_path / "log.db").unlink()  # an older (empty) backup restored
    with caplog.at_level("ERROR", logger="inferlog"):
        log = inferlog.open(url, system="s", signer_key=key_path, spool_dir=tmp_path / "spool")
        try:
            for batch in range(5):
                log.record(model=inferlog.Model("m", "1"), input=batch)
                assert log.flush(timeout=30)
        finally:
            with pytest.raises(IntegrityError, match="rolled back"):  # close's last checkpoint: loud
                log.close()
    assert log.counters.checkpoint_failures >= 5
    said = [r for r in caplog.records if "rolled back" in r.getMessage()]
    assert len(said) == 1, caplog.text
    assert not said[0].exc_info  # one line, not a traceback
