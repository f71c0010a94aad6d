"""Reading every entry a query matches, page by page: one loop for every reader of the store."""

from __future__ import annotations

from collections.abc import Iterator

from inferlog.record.model import StoredEntry
from inferlog.store.base import Query
from inferlog.store.protocols import EntryReader


def iter_entries(store: EntryReader, query: Query) -> Iterator[StoredEntry]:
    """Every entry matching ``query``, page by page (``query.limit`` per page), in its order.

    Starts after ``query.after`` like one page would; the next page is read only when the
    caller has consumed the previous one, so memory stays flat whatever the log's size.
    """
    while True:
        page = store.query(query)
        yield from page.entries
        if page.next_cursor is None:
            return
        query = query.next(page.next_cursor)
