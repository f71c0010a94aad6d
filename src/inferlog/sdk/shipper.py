"""Background delivery: the committer thread syncs the spool, the shipper thread empties it.

One owner per resource: the caller's threads only append to the spool; the committer alone syncs;
the shipper alone reads the spool, talks to the transport and deletes delivered segments. Failures to
deliver are retried with capped exponential backoff and jitter, forever: a record leaves the spool
only when the transport said it is in the log (or refused it, which is counted and kept aside in the
spool's ``dead-letter`` folder). Nothing is dropped silently.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec

from inferlog.errors import InferlogError, IntegrityError, KeyDestroyed, RecordInvalid, StoreUnavailable
from inferlog.privacy.frames import MAGIC as SEALED_FRAME
from inferlog.record.model import Entry
from inferlog.record.validate import check_entry
from inferlog.sdk.spool import DATA_START, Cursor, OrphanSpool, SpoolWriter, adopt_orphans
from inferlog.sdk.transport import Transport
from inferlog.store.base import AppendResult

log = logging.getLogger("inferlog.shipper")

_decoder = msgspec.msgpack.Decoder(Entry)
_LOOP_PAUSE = 1.0  # seconds the shipper waits after an unexpected error before it goes on


@dataclass
class Counters:
    """What happened to records, since this Log was opened (also in ``/metrics`` and ``stats``)."""

    spooled: int = 0  # accepted by record()/feedback() into the spool
    shipped: int = 0  # delivered to the store as new entries
    duplicates: int = 0  # delivered, but the store already had them (replays, retries)
    replayed: int = 0  # delivered from a dead process's spool
    failed: int = 0  # refused by the store (invalid, conflict); kept in dead-letter/
    dropped: int = 0  # not made durable and not raised (fail_closed=False); logged as errors
    retries: int = 0  # delivery attempts that failed and will be retried
    torn: int = 0  # torn frames cut from a dead process's spool tail
    checkpoint_failures: int = 0  # checkpoints that could not be made or published

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Shipper:
    """Owns the committer and shipper threads of one Log."""

    def __init__(
        self,
        spool: SpoolWriter,
        transport: Transport,
        counters: Counters,
        *,
        commit_interval: float,
        batch_size: int,
        max_backoff: float = 5.0,
        after_delivery: Callable[[], object] | None = None,
        open_frame: Callable[[bytes], bytes] | None = None,
        seal: Callable[[Entry], Entry] | None = None,
    ) -> None:
        self.spool = spool
        self.open_frame = open_frame  # sealed spool frames (a policy with a key store) are opened here
        self.seal = seal  # ... and their fields sealed here, before anything leaves the process
        self.transport = transport
        self.counters = counters
        self.commit_interval = commit_interval
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.after_delivery = after_delivery
        self._checkpoint_error = ""  # the last checkpoint failure logged (each distinct one once)
        self.cursor = Cursor(1, DATA_START)
        self.delivered = 0  # own frames delivered (or dead-lettered)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._orphans_done = threading.Event()
        self._committer = threading.Thread(target=self._commit_loop, name="inferlog-spool-sync", daemon=True)
        self._shipper = threading.Thread(target=self._ship_loop, name="inferlog-shipper", daemon=True)
        self._committer.start()
        self._shipper.start()

    # -- committer ----------------------------------------------------------------------------

    def _commit_loop(self) -> None:
        while not self._stop.wait(self.commit_interval):
            if self.spool.appended > self.spool.synced:
                self.spool.sync()
            self.spool.prepare_spare()

    # -- shipper ------------------------------------------------------------------------------

    def _ship_loop(self) -> None:
        """The thread's body: ship until stopped, outliving any one unexpected failure."""
        while not self._stop.is_set():
            try:
                self._ship_until_stopped()
            except Exception:
                log.exception("the shipper hit an unexpected error; it goes on in %.1fs", _LOOP_PAUSE)
                self._stop.wait(_LOOP_PAUSE)

    def _ship_until_stopped(self) -> None:
        self._replay_orphans_safely()
        self._orphans_done.set()
        next_orphan_scan = time.monotonic() + 30.0
        while not self._stop.is_set():
            payloads, after = self.spool.read(self.cursor, self.batch_size)
            if not payloads:
                if after != self.cursor:
                    self.cursor = after
                    self.spool.release_before(after.segment)
                    continue
                if time.monotonic() > next_orphan_scan:
                    self._replay_orphans_safely()
                    next_orphan_scan = time.monotonic() + 30.0
                self._after_delivery()
                self._wake.wait(self.commit_interval)
                self._wake.clear()
                continue
            if not self._deliver(payloads, self.spool.directory):
                continue  # stopping
            self.cursor = after
            with self._progress:
                self.delivered += len(payloads)
                self._progress.notify_all()
            self._after_delivery()

    def _replay_orphans_safely(self) -> None:
        """Replay dead processes' spools; a failure there is logged and tried again on the next scan."""
        try:
            self._replay_orphans()
        except Exception:
            log.exception("replaying a spool left by an ended process failed; it is tried again later")

    def _after_delivery(self) -> None:
        if self.after_delivery is None:
            return
        try:
            self.after_delivery()
        except Exception as exc:  # counted each time; logged when the reason changes, not per batch
            self.counters.checkpoint_failures += 1
            if str(exc) != self._checkpoint_error:
                self._checkpoint_error = str(exc)
                log.error("making a checkpoint failed: %s", exc, exc_info=not isinstance(exc, InferlogError))
        else:
            self._checkpoint_error = ""

    def _deliver(self, payloads: Sequence[bytes], origin: Path, replay: bool = False) -> bool:
        """Send until delivered; False only if asked to stop first.

        A frame that can never be stored (undecodable, nested too deep, unsealable) is dead-lettered
        once, when the batch is first prepared, and the rest go on: one poison record never holds back
        the ones behind it. Only what may pass (the key store or the transport being down) is retried.
        """
        backoff = 0.05
        batch: _Batch | None = None
        while True:
            try:
                if batch is None:  # once: a retry resends the same ciphertext, and refuses nothing twice
                    batch = self._prepare(payloads)
                    for frame, reason in batch.refused:
                        self._dead_letter(origin, _kept(frame), reason)
                # A transport that can skip the pipeline's entry check is told _prepare made it.
                send = getattr(self.transport, "send_checked", self.transport.send)
                results = send(batch.entries) if batch.entries else []
                break
            except Exception as exc:  # noqa: BLE001 - any failure is retried; the spool keeps the data
                self.counters.retries += 1
                log.warning("delivery failed, retrying in %.2fs: %s", backoff, exc)
                if self._stop.wait(backoff * (0.5 + random.random())):  # noqa: S311 - jitter, not secrets
                    return False
                backoff = min(backoff * 2, self.max_backoff)
        self._count(results, batch, origin, replay)
        return True

    def _prepare(self, payloads: Sequence[bytes]) -> _Batch:
        """Each frame decoded, checked and sealed, or refused with its reason.

        Raises only :class:`StoreUnavailable` (a key store that cannot be reached: the whole batch is
        tried again later). Anything else is about one frame, whatever it is (a RecursionError from a
        value nested too deep for the decoder, a bug): that frame is refused, never the batch.
        """
        batch = _Batch()
        for payload in payloads:
            try:
                frame = self.open_frame(payload) if self.open_frame is not None else payload
                entry = check_entry(_decoder.decode(frame))
            except StoreUnavailable:
                raise
            except (KeyDestroyed, IntegrityError) as exc:  # its key is gone, or the frame was altered
                batch.refused.append((payload, f"unreadable: {exc}"))
                continue
            except RecordInvalid as exc:
                batch.refused.append((payload, f"invalid: {exc}"))
                continue
            except Exception as exc:  # noqa: BLE001 - passed its CRC, so this is a bug: keep it aside
                batch.refused.append((payload, f"undecodable: {type(exc).__name__}: {exc}"))
                continue
            if self.seal is not None:
                try:
                    entry = self.seal(entry)
                except StoreUnavailable:
                    raise
                except Exception as exc:  # noqa: BLE001 - this entry only: kept as its sealed frame
                    batch.refused.append((payload, f"cannot be sealed: {exc}"))
                    continue
            batch.entries.append(entry)
            batch.frames.append(payload)
        return batch

    def _count(self, results: Sequence[AppendResult], batch: _Batch, origin: Path, replay: bool) -> None:
        c = self.counters
        for result, entry, frame in zip(results, batch.entries, batch.frames, strict=True):
            if result.status == "new":
                c.shipped += 1
                if replay:
                    c.replayed += 1
            elif result.status == "duplicate":
                c.duplicates += 1
            else:
                self._dead_letter(origin, _as_letter(entry, frame), f"{result.status}: {result.reason}")

    def _dead_letter(self, origin: Path, data: bytes, reason: str) -> None:
        """Keep a refused record aside in ``dead-letter/`` (JSON lines: the reason, and the record)."""
        self.counters.failed += 1
        log.error("record refused by the log and kept in dead-letter/ (%s)", reason)
        folder = origin.parent / "dead-letter"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f"{origin.name}.jsonl", "ab") as fh:
                fh.write(msgspec.json.encode({"reason": reason, "record": msgspec.Raw(data)}) + b"\n")
        except OSError as exc:  # the spool's folder is gone or full: say so, and do not stop shipping
            log.error("could not write the dead letter to %s: %s", folder, exc)

    def _replay_orphans(self) -> None:
        orphans = adopt_orphans(self.spool.root, own=self.spool.directory)
        try:
            while orphans:
                if not self._replay(orphans[0]):
                    orphans.pop(0)  # released by _replay
                    return
                orphans.pop(0)
        finally:
            for orphan in orphans:  # not replayed (stopping, or a failure): given back for a later scan
                orphan.release()

    def _replay(self, orphan: OrphanSpool) -> bool:
        log.info("replaying spool %s left by a process that ended", orphan.directory)
        for payloads, cursor in orphan.batches(self.batch_size):
            if not self._can_open(payloads):
                # Sealed by a Log that had a key store; this one has none: leave it for one that has.
                log.warning(
                    "spool %s holds sealed frames this Log cannot open (no key store, another one, or it is "
                    "down): left for a Log that can",
                    orphan.directory,
                )
                orphan.release()
                return True
            if not self._deliver(payloads, orphan.directory, replay=True):
                orphan.release()
                return False
            orphan.ack(cursor)
        self.counters.torn += orphan.torn
        orphan.finish()
        return True

    def _can_open(self, payloads: Sequence[bytes]) -> bool:
        """Whether this Log can open every sealed frame here (a destroyed key counts: that is final)."""
        for payload in payloads:
            if not payload.startswith(SEALED_FRAME):
                continue
            if self.open_frame is None:
                return False
            try:
                self.open_frame(payload)
            except KeyDestroyed:
                continue
            except InferlogError:
                return False
        return True

    # -- lifecycle ----------------------------------------------------------------------------

    def flush(self, target: int, timeout: float) -> bool:
        """Wait until own frames up to ``target`` are delivered, and dead processes' spools too."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        if not self._orphans_done.wait(timeout):
            return False
        with self._progress:
            while self.delivered < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._shipper.is_alive():
                    return False
                self._wake.set()
                self._progress.wait(min(remaining, 0.05))
        return True

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._shipper.join()
        self._committer.join()

    def forget_after_fork(self) -> None:
        """In a forked child the threads do not exist; make stop() a no-op.

        Fresh events, not ``set()`` on the inherited ones: a parent thread may have held their
        internal lock at the fork, and nobody in the child would ever release it.
        """
        self._stop = threading.Event()
        self._stop.set()
        self._wake = threading.Event()
        self._progress = threading.Condition()


@dataclass
class _Batch:
    """Spool frames made ready to send: the entries (with the frame each came from) and the refused."""

    entries: list[Entry] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    refused: list[tuple[bytes, str]] = field(default_factory=list)


def _as_letter(entry: Entry, frame: bytes) -> bytes:
    """A refused entry as JSON (readable), or as its spool frame if even that cannot be written."""
    try:
        return msgspec.json.encode(entry)
    except Exception:  # noqa: BLE001 - whatever it is, the frame keeps the record byte for byte
        return _kept(frame)


def _kept(frame: bytes) -> bytes:
    """A spool frame as a dead letter keeps it: base64 (it may be sealed, and is binary either way)."""
    return msgspec.json.encode({"frame": base64.b64encode(frame).decode("ascii")})
