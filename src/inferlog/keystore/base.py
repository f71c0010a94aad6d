"""The KeyStore protocol: named keys with versions, made on first use, destroyed on request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from inferlog import plugins
from inferlog.errors import UsageError


@dataclass(frozen=True)
class KeyInfo:
    """One version of a key, without its material."""

    name: str
    version: int
    created_at: dt.datetime
    destroyed_at: dt.datetime | None

    @property
    def ref(self) -> str:
        return f"{self.name}#{self.version}"


class KeyStore(Protocol):
    """Named 256-bit keys. ``name#version`` refers to one version; the newest live one is current.

    Implementations must make :meth:`destroy` final and visible to every process at once (the next
    :meth:`get` anywhere answers None), and must never hand out a destroyed version as current.
    """

    def current(self, name: str) -> tuple[str, bytes]:
        """``(ref, key)`` of the newest live version of ``name``; a first version is made if none is live."""
        ...

    def get(self, ref: str) -> bytes | None:
        """The key version ``ref``, or None if it was destroyed (or never existed)."""
        ...

    def rotate(self, name: str) -> str:
        """Make a new current version of ``name``; older versions stay readable until destroyed."""
        ...

    def destroy(self, name: str, version: int | None = None) -> int:
        """Destroy every version of ``name`` (or one); returns how many were live."""
        ...

    def list_keys(self, prefix: str = "") -> list[KeyInfo]:
        """Every version of every key whose name starts with ``prefix``, destroyed ones included."""
        ...

    def close(self) -> None: ...


KEYSTORES = plugins.Registry("inferlog.keystores", {"file": "inferlog.keystore.local:LocalKeyStore"})


def open_keystore(url: str | Path) -> KeyStore:
    """The key store at ``url``: a path (or ``file:`` URL) is a local key store file."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        scheme, rest = "file", text

    def unknown(known: list[str]) -> UsageError:
        return UsageError(f"no key store for {scheme}:// (known: {', '.join(sorted(known))})")

    store: KeyStore = KEYSTORES.load(scheme, unknown)(rest)
    return store
