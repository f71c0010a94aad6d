"""What a store does, cut by role: each caller asks for the roles it uses, a backend provides them all.

Every backend passes the same contract suite (``tests/store/contract.py``). A store:

- appends prepared entries in one transaction per batch, giving each new one the next gap-free ``seq``;
- deduplicates by id: a repeat with the same body is a ``duplicate`` that keeps its first ``seq``, a
  repeat with a different body is a ``conflict`` and is not written;
- answers queries in ``seq`` order with an opaque cursor, so an incremental reader sees every entry
  exactly once even while others write.

The roles, and who uses them (``docs/architecture.md`` has the full table)::

    EntryWriter   append                                  Ingestor, StoreTransport, admin entries
    EntryReader   get, query, scan, size, stats           query, follow, health, the kserve joiner
    LedgerStore   tree, leaf/tile hashes, ledger rows,    proofs, Checkpointer, verify
                  checkpoints
    PayloadStore  entry keys, re-wrap, purge              reveal, retention, erasure, rotation
    ApiKeyStore   put/get/list/revoke API keys            server auth
    RollupStore   monitor rollups, their cursor, values,  inferlog.monitor (the engine)
                  purged rows to refold

Callers that need several roles name the combination: :class:`EntryStore` (writer + reader),
:class:`EntrySink`, :class:`KeyAdminStore`, :class:`AuditStore`, :class:`GovernedStore`. :class:`Store` is every role,
plus ``url`` and ``close``: what ``open_store`` returns and what the faces hold.

Python has no intersection types, so a combination is a Protocol that inherits its roles; any object
with the methods satisfies it, a backend need not name it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from inferlog.ledger.merkle import CompactRange
from inferlog.record.model import StoredEntry, WrappedKey
from inferlog.record.prepared import Prepared
from inferlog.store.base import (
    ApiKey,
    AppendResult,
    FoldRow,
    LedgerRow,
    Page,
    Purge,
    PurgedRow,
    PurgeResult,
    Query,
    Rollup,
    RollupFilter,
    RollupKey,
    RollupState,
    StoredCheckpoint,
)


@runtime_checkable
class EntryWriter(Protocol):
    """Appends entries: all a producer (the SDK's transport, a broker worker) needs."""

    def append(self, batch: Sequence[Prepared]) -> list[AppendResult]:
        """Append a batch atomically; results in the batch's order."""
        ...


@runtime_checkable
class EntryReader(Protocol):
    """Reads entries back: by id, by query, in seq order."""

    def get(self, entry_id: str) -> StoredEntry | None:
        """The entry with this id, or None."""
        ...

    def query(self, query: Query) -> Page:
        """One page of entries matching ``query``, in seq order."""
        ...

    def scan(self, after: int = 0, limit: int = 1000) -> list[StoredEntry]:
        """Entries with seq > after, in seq order, unfiltered (for verification and export)."""
        ...

    def size(self) -> int:
        """How many entries the ledger holds (= the highest seq)."""
        ...

    def stats(self, query: Query | None = None) -> dict[str, Any]:
        """Counts by kind, status, system and model, latency percentiles, time range."""
        ...


@runtime_checkable
class LedgerStore(Protocol):
    """The Merkle tree over the entries and its signed checkpoints (see :mod:`inferlog.integrity`)."""

    def tree(self) -> CompactRange:
        """The Merkle tree's compact range over all entries (leaf i is the entry with seq i + 1)."""
        ...

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of leaf indices [start, end), i.e. of seq start+1 .. end."""
        ...

    def tile_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Stored perfect-subtree hashes at ``level`` (8, 16, ...), indices [start, end); a prefix if fewer."""
        ...

    def ledger_rows(self, after: int = 0, limit: int = 10_000) -> list[LedgerRow]:
        """Raw rows with seq > after, in seq order, for the verifier."""
        ...

    def add_checkpoint(self, size: int, root: bytes, note: bytes) -> None:
        """Keep a signed checkpoint (idempotent by size)."""
        ...

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every kept checkpoint, by size."""
        ...


@runtime_checkable
class PayloadStore(Protocol):
    """Payloads apart from their leaves: sealed entries' data keys, and purging (see :mod:`inferlog.retention`)."""

    def entry_keys(self, ids: Sequence[str]) -> dict[str, WrappedKey]:
        """The wrapped data keys of those sealed entries that still have one."""
        ...

    def keys_wrapped_by(self, ref: str, after: str = "", limit: int = 1000) -> list[tuple[str, WrappedKey]]:
        """Up to ``limit`` (id, wrapped key) pairs with id > ``after``, in id order, whose key uses ``ref``.

        Pass the last id back as ``after`` to go on: a whole pass reads the table once.
        """
        ...

    def rewrap(self, keys: Sequence[tuple[str, WrappedKey]]) -> None:
        """Replace wrapped data keys (key rotation); the entries themselves do not change."""
        ...

    def purge(self, purge: Purge, *, dry_run: bool = False) -> PurgeResult:
        """Remove body, salt and data key of the matching entries; their leaves stay."""
        ...


@runtime_checkable
class ApiKeyStore(Protocol):
    """The server's API keys (see :mod:`inferlog.apikeys`)."""

    def put_api_key(self, key: ApiKey) -> None:
        """Keep a new API key (its kid must be new)."""
        ...

    def get_api_key(self, kid: str) -> ApiKey | None:
        """The key with this kid, revoked or not."""
        ...

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        ...

    def revoke_api_key(self, kid: str, at: dt.datetime) -> bool:
        """Mark a key revoked; False if there is no such (unrevoked) key."""
        ...


@runtime_checkable
class RollupStore(Protocol):
    """The monitor's aggregates: derived data, rebuilt from the log on demand (never part of the ledger)."""

    def rollup_state(self) -> RollupState:
        """How far the rollups have folded the log."""
        ...

    def rollups(self, where: RollupFilter) -> list[Rollup]:
        """The rollups of one level matching ``where``, by bucket then scope."""
        ...

    def rollups_at(self, keys: Sequence[RollupKey]) -> list[Rollup]:
        """The rollups at exactly these keys (those that exist)."""
        ...

    def put_rollups(
        self, rows: Sequence[Rollup], *, expect: RollupState, cursor: int, drop: Sequence[RollupKey] = ()
    ) -> RollupState:
        """Write (replace) rows, delete ``drop``, move the cursor, atomically; :class:`Conflict` if the
        state is no longer ``expect`` (another monitor wrote first). Returns the new state."""
        ...

    def clear_rollups(self) -> None:
        """Forget every rollup and reset the state (a rebuild starts from here)."""
        ...

    def monitor_value(self, name: str) -> bytes | None:
        """A value the monitor keeps beside its rollups (a reference profile, a key), or None."""
        ...

    def put_monitor_value(self, name: str, value: bytes | None) -> None:
        """Keep (or, with None, delete) a named value."""
        ...

    def monitor_values(self, prefix: str) -> list[str]:
        """The names of kept values that start with ``prefix``, sorted."""
        ...

    def fold_scan(self, after: int = 0, limit: int = 1000) -> list[FoldRow]:
        """Entries after seq ``after`` (at most ``limit``, by seq) as the fold reads them: columns and body."""
        ...

    def purged_rows(self, first_seq: int, last_seq: int) -> list[PurgedRow]:
        """Purged inferences with seq in [first_seq, last_seq], and the inferences of purged feedback there."""
        ...


# -- combinations that callers need -------------------------------------------------------------


@runtime_checkable
class EntryStore(EntryWriter, EntryReader, Protocol):
    """Appends and reads entries (``inferlog import`` checks what is there, then appends)."""


@runtime_checkable
class EntrySink(EntryWriter, Protocol):
    """Appends, and is closed by whoever holds it: the SDK's ``StoreTransport`` owns its store."""

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


@runtime_checkable
class KeyAdminStore(ApiKeyStore, EntryWriter, Protocol):
    """API keys whose every change is put on record: issuing and revoking write an admin entry."""


@runtime_checkable
class AuditStore(EntryReader, LedgerStore, PayloadStore, Protocol):
    """What the verifier reads: entries, the ledger's rows and tiles, and sealed entries' data keys."""


@runtime_checkable
class GovernedStore(EntryStore, PayloadStore, Protocol):
    """What retention, erasure and key rotation touch: payloads, and the log that records each action."""


@runtime_checkable
class MonitorStore(EntryReader, PayloadStore, RollupStore, Protocol):
    """What the monitoring engine reads and keeps: entries (sealed ones opened), and its own rollups."""


@runtime_checkable
class Store(EntryStore, LedgerStore, PayloadStore, ApiKeyStore, RollupStore, Protocol):
    """Every role: a place the ledger lives. Implementations: SQLite (embedded), PostgreSQL (production)."""

    url: str

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
