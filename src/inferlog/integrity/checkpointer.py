"""Making checkpoints: on a cadence (every N entries or T seconds) and on demand, then publishing them."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from inferlog.config import (
    ENV_CHECKPOINT_DIR,
    ENV_CHECKPOINT_EVERY,
    ENV_CHECKPOINT_SECONDS,
    ENV_CHECKPOINT_WEBHOOK,
)
from inferlog.errors import CheckpointError, InferlogError, IntegrityError, NoteError, ProofError, UsageError
from inferlog.integrity.publish import DirectoryPublisher, Publisher, WebhookPublisher
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import load_signer, signer_key_path
from inferlog.integrity.tree import consistency
from inferlog.ledger.checkpoint import open_checkpoint
from inferlog.ledger.merkle import verify_consistency
from inferlog.periodic import Periodic
from inferlog.store.base import StoredCheckpoint
from inferlog.store.protocols import LedgerStore

log = logging.getLogger("inferlog.checkpoints")


class Checkpointer:
    """Signs the store's current tree head when enough has changed, keeps it, publishes it."""

    def __init__(
        self,
        store: LedgerStore,
        signer: CheckpointSigner,
        publishers: Sequence[Publisher] = (),
        *,
        every_entries: int = 1000,
        every_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.signer = signer
        self.publishers = list(publishers)
        self.every_entries = every_entries
        self.every_seconds = every_seconds
        self.publish_failures = 0
        last = signer.last()
        self._last_size = last[0] if last else 0
        self._last_time = time.monotonic()

    @property
    def last_size(self) -> int:
        """The size this checkpointer last signed (or its signer had signed when it started)."""
        return self._last_size

    def maybe_checkpoint(self) -> StoredCheckpoint | None:
        """Checkpoint if N new entries arrived, or new entries have waited T seconds."""
        size = self.store.tree().size
        new = size - self._last_size
        if new < 0:  # silence here would hide the one alarm that matters: refuse, so the cadence reports it
            raise IntegrityError(
                f"the log holds fewer entries than this key already signed ({self._last_size}): it shrank "
                "or was rolled back (or the key belongs to another log); no checkpoint is signed until "
                "that is resolved; run `inferlog verify`"
            )
        if new == 0:
            self._last_time = time.monotonic()
            return None
        if new < self.every_entries and time.monotonic() - self._last_time < self.every_seconds:
            return None
        return self.checkpoint()

    def checkpoint(self) -> StoredCheckpoint:
        """Sign, keep and publish a checkpoint of the tree as it is now.

        The tree is read under the signer's lock, so a checkpoint made meanwhile by another thread or
        process (sharing the key) is never larger than the head read here: concurrent calls all succeed.
        """
        with self.signer.locked():
            tree = self.store.tree()
            root = tree.root()
            self._check_against_kept(tree.size, root)
            note = self.signer.sign(tree.size, root, lambda a, b: consistency(self.store, a, b))
            self.store.add_checkpoint(tree.size, root, note)
            for publisher in self.publishers:
                try:
                    publisher.publish(tree.size, note)
                except Exception as exc:  # noqa: BLE001 - a down mirror must not stop the log; it is counted
                    self.publish_failures += 1
                    log.error("could not publish checkpoint %d to %r: %s", tree.size, publisher, exc)
        self._last_size = tree.size
        self._last_time = time.monotonic()
        kept = [c for c in self.store.checkpoints() if c.size == tree.size]
        return kept[0]

    def _check_against_kept(self, size: int, root: bytes) -> None:
        """Refuse a head inconsistent with the newest checkpoint this key signed that the store keeps.

        The signer's state is the real guard; this one catches a state file restored from a backup
        (or lost), which would otherwise let the key sign a second root for a size it already signed.
        The store can only make it refuse more, never sign more: the note must carry our signature.
        """
        kept = self.store.checkpoints()
        if not kept:
            return
        newest = kept[-1]
        try:
            signed = open_checkpoint(newest.note, [self.signer.signer.verifier()], origin=self.signer.origin)
        except (NoteError, CheckpointError):
            return  # not ours (another key, or a forgery): nothing this signer promised
        last = self.signer.last()
        if last is not None and last[0] >= signed.size:
            return  # the state already covers it: sign() checks against the state
        if size < signed.size:
            raise IntegrityError(
                f"refusing to sign size {size}: the store keeps checkpoint {signed.size} signed by this key, "
                "but the signer's state does not know it (restored from a backup?)"
            )
        try:
            proof = consistency(self.store, signed.size, size) if size > signed.size else []
            verify_consistency(signed.size, size, signed.root, root, proof)
        except ProofError as exc:
            raise IntegrityError(
                f"refusing to sign size {size}: it is not consistent with checkpoint {signed.size}, which this "
                f"key signed and the store keeps ({exc}); the signer's state does not know it (restored from a backup?)"
            ) from exc

    @classmethod
    def from_settings(
        cls,
        store: LedgerStore,
        key_file: str | os.PathLike[str] | None = None,
        *,
        directory: str | None = None,
        webhook: str | None = None,
    ) -> Checkpointer:
        """Build from arguments, falling back to the INFERLOG_* environment variables."""
        key_path = signer_key_path(key_file)
        signer = CheckpointSigner.beside_key(load_signer(key_path), key_path)
        publishers: list[Publisher] = []
        folder = directory or os.environ.get(ENV_CHECKPOINT_DIR)
        if folder:
            publishers.append(DirectoryPublisher(Path(folder)))
        url = webhook or os.environ.get(ENV_CHECKPOINT_WEBHOOK)
        if url:
            try:
                publishers.append(WebhookPublisher(url))
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
        return cls(
            store,
            signer,
            publishers,
            every_entries=_int_env(ENV_CHECKPOINT_EVERY, 1000),
            every_seconds=float(_int_env(ENV_CHECKPOINT_SECONDS, 10)),
        )


class CheckpointCadence:
    """A named thread that owns a checkpointer's cadence: it signs every N entries or T seconds.

    It looks at the tree every ``poll`` seconds (at most 1 s, at most T), so a checkpoint follows the
    N-th new entry within a second and a lone entry within about T seconds. A failure (the store is
    down, the signer refuses a head) is counted and logged when its message changes, and the thread
    tries again at the next tick: it never stops until closed.
    """

    def __init__(self, checkpointer: Checkpointer, poll: float | None = None) -> None:
        self.checkpointer = checkpointer
        self.poll = poll if poll is not None else min(1.0, checkpointer.every_seconds)
        self.signed = 0
        self.failures = 0
        self._last_error = ""
        self._ticker = Periodic("inferlog-checkpoints", self.poll, self.tick, first_now=False)

    def start(self) -> None:
        self._ticker.start()

    def tick(self, *, final: bool = False) -> StoredCheckpoint | None:
        """One look at the tree: checkpoint if the cadence says so (``final``: if anything is new)."""
        try:
            if final:
                fresh = self.checkpointer.store.tree().size > self.checkpointer.last_size
                kept = self.checkpointer.checkpoint() if fresh else None
            else:
                kept = self.checkpointer.maybe_checkpoint()
        except Exception as exc:  # the cadence must outlive any one failure; counted and logged
            self.failures += 1
            if str(exc) != self._last_error:
                known = isinstance(exc, InferlogError)
                log.error("could not sign a checkpoint on the cadence: %s", exc, exc_info=not known)
                self._last_error = str(exc)
            return None
        if kept is not None:
            self.signed += 1
            self._last_error = ""
        return kept

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (it finishes a checkpoint it is making), then sign what arrived since."""
        if self._ticker.stop(timeout):
            self.tick(final=True)


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, got {value!r}") from None
    if number < 1:
        raise UsageError(f"{name} must be at least 1, got {number}")
    return number
