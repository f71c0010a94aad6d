"""Tailing a store: yield every new matching entry, in seq order, as it is appended.

Stores hand out ``seq`` gap-free and in commit order, so remembering the last seq seen is enough to
miss nothing and see nothing twice, however many writers there are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from inferlog.record.model import StoredEntry
from inferlog.store.base import Query
from inferlog.store.protocols import EntryReader


def follow(
    store: EntryReader,
    query: Query,
    *,
    interval: float = 1.0,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[StoredEntry]:
    """Entries matching ``query`` with seq > ``query.after``, forever (until ``stop()`` is true).

    Reads every available page, then waits ``interval`` seconds before polling again. The query's
    ``order`` is ignored: new entries always come oldest first.
    """
    for page in follow_pages(store, query, interval=interval, stop=stop, sleep=sleep):
        yield from page


def follow_pages(
    store: EntryReader,
    query: Query,
    *,
    interval: float = 1.0,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[StoredEntry]]:
    """Like :func:`follow`, a page at a time (never empty): for callers that act once per read."""
    if query.order != "asc":
        query = replace(query, order="asc")
    cursor = query.after
    while not stop():
        page = store.query(query.next(cursor))
        if page.entries:
            yield list(page.entries)
            cursor = page.entries[-1].seq
        if page.next_cursor is None:
            if stop():
                return
            sleep(interval)
