"""The checkpoint signer: signs tree heads, and never one inconsistent with the last it signed.

It keeps its own record of the last size and root it signed (a state file beside its key, not in the
database), and demands a consistency proof from there to the new head before it signs. A database
rolled back, forked or rewritten therefore cannot get a signature for its new history.

Every signature is made under a lock on that state: a re-entrant thread lock per state file in this
process, and an ``flock`` on ``<state>.lock`` for other processes sharing the key. Under it the state is
read afresh, checked, the note signed and the new state written, so two overlapping ``sign`` calls
cannot both pass the check against the same old state: the state never moves backwards, and one key
never signs two roots for one size.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from inferlog.errors import IntegrityError, ProofError
from inferlog.integrity.files import file_lock, write_atomic
from inferlog.ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from inferlog.ledger.merkle import verify_consistency

ProveFrom = Callable[[int, int], list[bytes]]


class _StateLock:
    """A re-entrant lock on one state file: threads of this process, then other processes (flock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._held: contextlib.ExitStack | None = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                stack = contextlib.ExitStack()
                stack.enter_context(file_lock(self.path))
                self._held = stack
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._held is not None:
                    held, self._held = self._held, None
                    held.close()


_locks: dict[Path, _StateLock] = {}
_locks_guard = threading.Lock()


def _lock_for(state_path: Path) -> _StateLock:
    lock_path = state_path.with_name(state_path.name + ".lock").resolve()
    with _locks_guard:
        lock = _locks.get(lock_path)
        if lock is None:
            lock = _locks[lock_path] = _StateLock(lock_path)
        return lock


def _forget_locks_after_fork() -> None:
    """In a forked child: a parent thread may have held a lock; the child starts with fresh ones."""
    global _locks_guard
    _locks_guard = threading.Lock()
    _locks.clear()


os.register_at_fork(after_in_child=_forget_locks_after_fork)


class CheckpointSigner:
    """Signs checkpoints with one key, keeping the last signed head in ``state_path``."""

    def __init__(self, signer: NoteSigner, state_path: Path) -> None:
        self.signer = signer
        self.state_path = state_path

    @property
    def origin(self) -> str:
        return self.signer.name

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the signer's state for a read-check-sign sequence (re-entrant; ``sign`` takes it too)."""
        with _lock_for(self.state_path).hold():
            yield

    def last(self) -> tuple[int, bytes] | None:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        return int(data["size"]), base64.b64decode(data["root"])

    def sign(self, size: int, root: bytes, prove: ProveFrom) -> bytes:
        """Sign (size, root) if it extends the last signed head; ``prove(a, b)`` gives the proof."""
        with self.locked():
            last = self.last()  # read under the lock: another thread or process may just have signed
            if last is not None:
                last_size, last_root = last
                if size < last_size:
                    raise IntegrityError(
                        f"refusing to sign size {size}: already signed size {last_size} "
                        "(the log shrank or was rolled back)"
                    )
                try:
                    proof = prove(last_size, size) if size > last_size else []
                    verify_consistency(last_size, size, last_root, root, proof)
                except ProofError as exc:
                    raise IntegrityError(
                        f"refusing to sign size {size}: it is not consistent with the signed size {last_size} ({exc})"
                    ) from exc
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
            state = {"origin": self.origin, "size": size, "root": base64.b64encode(root).decode()}
            write_atomic(self.state_path, json.dumps(state).encode())
            return note

    @classmethod
    def beside_key(cls, signer: NoteSigner, key_path: Path) -> CheckpointSigner:
        return cls(signer, key_path.with_name(key_path.name + ".state"))
