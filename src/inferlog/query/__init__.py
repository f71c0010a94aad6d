"""Reading the log: filters from user input, paging with the seq cursor, following new entries."""

from __future__ import annotations

from dataclasses import replace

from inferlog.query.filters import build_query, parse_attribute, parse_since
from inferlog.query.follow import follow, follow_pages
from inferlog.record.model import StoredEntry
from inferlog.store.base import Query
from inferlog.store.paging import iter_entries
from inferlog.store.protocols import EntryReader

__all__ = [
    "build_query",
    "follow",
    "follow_pages",
    "iter_entries",
    "last_entries",
    "parse_attribute",
    "parse_since",
]


def last_entries(store: EntryReader, query: Query, count: int) -> tuple[list[StoredEntry], int]:
    """The last ``count`` matching entries oldest first, and the seq to follow on from.

    The seq is read before the entries, so following from it misses nothing appended meanwhile.
    """
    head = store.size()
    if count <= 0:
        return [], head
    page = store.query(replace(query, after=head + 1, limit=count, order="desc"))
    return list(reversed(page.entries)), head
