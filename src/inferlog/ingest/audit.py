"""The read trail: every read of payloads, through any face, becomes access entries in the log.

One entry per system read, filed under that system: an auditor scoped to one system sees every read
of it, and a read that spans systems is never filed under a made-up name ("a,b") nobody's scope
covers. The faces (server, command line, SDK) say who read and why; this module writes it down.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from inferlog.ingest.service import Ingestor
from inferlog.record.ids import uuid7
from inferlog.record.model import AccessEntry, StoredEntry
from inferlog.record.validate import checked

ALL_SYSTEMS = "*"


def os_user() -> str:
    """Who runs this process, as the operating system knows them (the actor of a local read)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


def counts_by_system(entries: Iterable[StoredEntry]) -> Counter[str]:
    """How many of these entries each system holds."""
    return Counter(stored.entry.system for stored in entries)


def record_read(
    ingestor: Ingestor,
    *,
    actor: str,
    action: str,
    purpose: str,
    scope: Sequence[str] | None,
    query: Mapping[str, Any],
    counts: Mapping[str, int],
) -> list[AccessEntry]:
    """Append the access entries of one read (raises, so the read fails, if they cannot be logged).

    One entry per system in a finite ``scope``, else per system read: ``counts`` is how many entries
    of each system the read returned. A scope of every system (``None`` or ``*``) files under each
    system actually read, or once under ``*`` when nothing was found.
    """
    if scope is None or ALL_SYSTEMS in scope:
        systems = sorted(counts) or [ALL_SYSTEMS]
    else:
        systems = sorted(set(scope) | set(counts))
    now = dt.datetime.now(dt.UTC)
    described = msgspec.to_builtins(dict(query))
    entries = [
        AccessEntry(
            id=uuid7(),
            system=system,
            ts=now,
            actor=actor,
            action=action,
            purpose=purpose,
            query=described,
            count=counts.get(system, 0),
        )
        for system in systems
    ]
    ingestor.append([checked(entry) for entry in entries])
    return entries
