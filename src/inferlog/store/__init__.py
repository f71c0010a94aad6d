"""Storage: one Store protocol, backends picked by the URL's scheme.

Built-in backends register through the same ``inferlog.stores`` entry-point group a third-party
backend would use, so ``open_store("mydb://…")`` finds a plugin the same way it finds SQLite.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from inferlog import plugins
from inferlog.errors import UnknownStore
from inferlog.store.base import AppendResult, Page, Query, Store

__all__ = ["AppendResult", "Page", "Query", "Store", "open_store", "store_schemes"]

_BUILTIN = {
    "sqlite": "inferlog.store.sqlite:SQLiteStore",
    "postgresql": "inferlog.store.postgres:PostgresStore",
    "postgres": "inferlog.store.postgres:PostgresStore",
}


def store_schemes() -> dict[str, str]:
    """Scheme -> "module:Class" for every known backend, built-ins first."""
    return plugins.known("inferlog.stores", _BUILTIN)


def open_store(url: str, **options: Any) -> Store:
    """Open the store a URL names, e.g. ``sqlite:///inferlog.db``."""
    scheme = urlsplit(url).scheme
    schemes = store_schemes()
    target = schemes.get(scheme)
    if target is None:
        known = ", ".join(f"{name}://" for name in sorted(schemes))
        hint = f"; did you mean sqlite:///{url}?" if "://" not in url else ""  # a file name, not a URL
        raise UnknownStore(f"no store for {url!r}: the URL must start with one of {known}{hint}")
    store: Store = plugins.load(target)(url, **options)
    return store
