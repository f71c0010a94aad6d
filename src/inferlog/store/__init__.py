"""Storage: role protocols (:mod:`inferlog.store.protocols`), backends picked by the URL's scheme.

Built-in backends are listed in :data:`STORES`; a third-party backend registers its scheme in the
``inferlog.stores`` entry-point group, and ``open_store("mydb://…")`` finds it through the same
lookup (see :mod:`inferlog.plugins`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from inferlog import plugins
from inferlog.errors import UnknownStore
from inferlog.store.base import AppendResult, Page, Query
from inferlog.store.protocols import (
    ApiKeyStore,
    AuditStore,
    EntryReader,
    EntrySink,
    EntryStore,
    EntryWriter,
    GovernedStore,
    KeyAdminStore,
    LedgerStore,
    MonitorStore,
    PayloadStore,
    RollupStore,
    Store,
)

__all__ = [
    "STORES",
    "ApiKeyStore",
    "AppendResult",
    "AuditStore",
    "EntryReader",
    "EntrySink",
    "EntryStore",
    "EntryWriter",
    "GovernedStore",
    "KeyAdminStore",
    "LedgerStore",
    "MonitorStore",
    "Page",
    "PayloadStore",
    "Query",
    "RollupStore",
    "Store",
    "open_store",
    "store_schemes",
]

STORES = plugins.Registry(
    "inferlog.stores",
    {
        "sqlite": "inferlog.store.sqlite:SQLiteStore",
        "postgresql": "inferlog.store.postgres:PostgresStore",
        "postgres": "inferlog.store.postgres:PostgresStore",
    },
)


def store_schemes() -> dict[str, str]:
    """Scheme -> "module:Class" for every known backend, built-ins first."""
    return STORES.known()


def open_store(url: str, **options: Any) -> Store:
    """Open the store a URL names, e.g. ``sqlite:///inferlog.db``."""

    def unknown(schemes: list[str]) -> UnknownStore:
        known = ", ".join(f"{name}://" for name in sorted(schemes))
        hint = f"; did you mean sqlite:///{url}?" if "://" not in url else ""  # a file name, not a URL
        return UnknownStore(f"no store for {url!r}: the URL must start with one of {known}{hint}")

    store: Store = STORES.load(urlsplit(url).scheme, unknown)(url, **options)
    return store
