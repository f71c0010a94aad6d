"""Plaintext for readers allowed to see it: sealed entries opened with the key store's keys.

Only the faces decide who may see plaintext (a reader or admin key on the server; whoever holds the
key store on the command line); this module only opens what it is handed. An entry whose keys were
destroyed (erasure, retention) stays as stored: ciphertext that nobody can open. One that does not
open with keys that exist (a writer stored something broken) stays as stored too, marked
``unreadable`` with the reason: a read never fails because of what one writer stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from inferlog.errors import IntegrityError, KeyDestroyed, UsageError
from inferlog.privacy.seal import Opener
from inferlog.record.model import Entry, StoredEntry
from inferlog.store.protocols import PayloadStore


def reveal(store: PayloadStore, opener: Opener | None, entries: Sequence[StoredEntry]) -> list[StoredEntry]:
    """The entries with every sealed field decrypted where the keys still exist."""
    sealed = [s.id for s in entries if s.body is not None and s.entry.sealed is not None]
    if opener is None or not sealed:
        return list(entries)
    keys = store.entry_keys(sealed)
    opened: list[StoredEntry] = []
    for stored in entries:
        if stored.body is None or stored.entry.sealed is None:
            opened.append(stored)
            continue
        try:
            entry = opener.open(stored.entry, keys.get(stored.id))
        except KeyDestroyed:
            opened.append(stored)
            continue
        except (IntegrityError, UsageError) as exc:  # UsageError: a key reference that is no reference
            opened.append(msgspec.structs.replace(stored, unreadable=str(exc)))
            continue
        opened.append(msgspec.structs.replace(stored, entry=entry))
    return opened


def reveal_entries(store: PayloadStore, opener: Opener, entries: Sequence[Entry]) -> list[Entry]:
    """The entries alone (no stored row around them), sealed fields opened where the keys still exist.

    For readers that parse only some entries of a batch (the monitor's fold): an entry whose keys were
    destroyed, or that does not open, stays as it is, sealed, and the reader treats it so.
    """
    sealed = [e.id for e in entries if e.sealed is not None]
    if not sealed:
        return list(entries)
    keys = store.entry_keys(sealed)
    opened: list[Entry] = []
    for entry in entries:
        if entry.sealed is None:
            opened.append(entry)
            continue
        try:
            opened.append(opener.open(entry, keys.get(entry.id)))
        except (KeyDestroyed, IntegrityError, UsageError):
            opened.append(entry)
    return opened
