"""Concurrent and multi-process signing: one key never signs two roots for one size, nor moves back.

The attacker here is only bad luck: two threads of one server (the cadence and a POSTed checkpoint),
or several processes sharing one signing key (a CLI `inferlog checkpoint` beside a running server).
Each worker offers heads from two histories that share their first 5 entries, so a signer whose state
moved backwards would sign a fork; the assertions say it never does.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from inferlog.errors import IntegrityError
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.keys import init_signer, load_signer, load_verifiers, public_key_path
from inferlog.integrity.signer import CheckpointSigner
from inferlog.ledger.checkpoint import NoteVerifier, open_checkpoint
from inferlog.ledger.hashing import leaf_hash
from inferlog.ledger.merkle import LeafList, consistency_proof, root_of
from inferlog.store import open_store
from inferlog.testing import make_record, prepare

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


def test_threads_signing_at_once_never_fork_or_go_back(tmp_path: Path) -> None:
    """Eight threads signing heads of two forks through one key never crash, fork, or roll the state back."""
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="race.test/log")
    errors: list[BaseException] = []
    runs: list[list[Signed]] = []

    def run(seed: int) -> None:
        signer = CheckpointSigner.beside_key(load_signer(key_path), key_path)  # one object per thread
        try:
            runs.append(_worker(signer, seed))
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    signer = CheckpointSigner.beside_key(load_signer(key_path), key_path)
    _assert_consistent(runs, signer, load_verifiers([str(public_key_path(key_path))]))


def test_one_signer_object_shared_by_threads(tmp_path: Path) -> None:
    """Threads sharing one CheckpointSigner object (as a server's threads do) never crash or fork."""
    key_path = tmp_path / "signer.key"
    init_signer(key_path, origin="race.test/log")
    signer = CheckpointSigner.beside_key(load_signer(key_path), key_path)
    errors: list[BaseException] = []
    runs: list[list[Signed]] = []

    def run(seed: int) -> None:
        try:
            runs.append(_worker(signer, seed))
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
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
    url = f"sqlite:///{tmp_path / 'log.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
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
