"""An entry ready to append: what the pipeline hands the store, and all the store needs of it."""

from __future__ import annotations

from typing import NamedTuple

from inferlog.record.model import Entry, WrappedKey


class Prepared(NamedTuple):
    """An entry ready to append: its canonical body, salt, leaf bytes and leaf hash.

    Made by :class:`inferlog.pipeline.Pipeline`; it lives here, with the other core types, so a
    store depends on the data it keeps, not on the code that makes it.

    ``key`` is a sealed entry's wrapped data key, which the store keeps beside the body (never in it:
    rotation re-wraps it and a purge deletes it, and neither may change what the leaf commits to).
    """

    entry: Entry
    body: bytes
    salt: bytes
    leaf: bytes
    leaf_hash: bytes
    key: WrappedKey | None = None
