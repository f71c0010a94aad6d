"""API keys: their format, and making, listing and revoking them on record.

A key looks like ``ilog_live_<kid>_<secret>_<check>``: a prefix secret scanners can find, a key id to
look it up by, 32 random bytes, and a CRC32 checksum so a scanner can tell a real key from a random
string offline (GitHub's token design). Only ``SHA-256(secret)`` is stored; the key is shown once.

Roles: ``ingest`` appends; ``reader`` reads inference and feedback entries of its systems; ``auditor``
reads everything of its systems, proofs and the access trail; ``admin`` manages keys. A key is scoped to
one or more systems (``*`` for all).

:func:`issue_key` and :func:`revoke_key` put every change on record as an ``admin`` entry
(``key.created``, ``key.revoked``); the HTTP routes and ``inferlog keys`` both call them. Checking a
presented key (and refusing it with HTTP 401) is the server's part: :mod:`inferlog.server.auth`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import zlib
from collections.abc import Sequence
from typing import Any

from inferlog.errors import NotFound, UsageError
from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid7
from inferlog.record.model import AdminEntry
from inferlog.record.validate import checked
from inferlog.store.base import ROLES, ApiKey
from inferlog.store.protocols import ApiKeyStore, EntryWriter, KeyAdminStore

PREFIX = "ilog"
KEY_PATTERN = re.compile(
    r"^ilog_(?P<env>[a-z]+)_(?P<kid>[0-9a-f]{12})_(?P<secret>[0-9A-Za-z]{43})_(?P<check>[0-9a-z]{6})$"
)
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


def checksum(body: str) -> str:
    """The six-character CRC32 check that ends a key whose first part is ``body``."""
    number = zlib.crc32(body.encode())
    out = []
    for _ in range(6):
        number, digit = divmod(number, 36)
        out.append("0123456789abcdefghijklmnopqrstuvwxyz"[digit])
    return "".join(reversed(out))


def hash_secret(secret: str) -> bytes:
    """What the store keeps of a key's secret."""
    # Machine-made 256-bit secrets: a fast hash suffices and keeps lookups cheap (no password
    # stretching is needed for secrets nobody chose).
    return hashlib.sha256(secret.encode()).digest()


def create_key(
    store: ApiKeyStore, role: str, systems: Sequence[str], name: str, env: str = "live"
) -> tuple[str, ApiKey]:
    """Make and keep a new key, off the record; returns the full key string (shown once) and what was stored.

    For setting a log up (tests, benchmarks): faces use :func:`issue_key`, which puts the key on record.
    """
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not systems:
        raise UsageError("a key needs at least one system (or '*' for all)")
    if not name:
        raise UsageError("a key needs a name saying who or what uses it")
    kid = secrets.token_hex(6)
    secret = _base62(secrets.token_bytes(32), 43)
    body = f"{PREFIX}_{env}_{kid}_{secret}"
    stored = ApiKey(kid, hash_secret(secret), role, tuple(systems), name, dt.datetime.now(dt.UTC))
    store.put_api_key(stored)
    return f"{body}_{checksum(body)}", stored


def issue_key(
    store: KeyAdminStore, role: str, systems: Sequence[str], name: str, *, actor: str, env: str = "live"
) -> tuple[str, ApiKey]:
    """Make a key and put it on record (a ``key.created`` admin entry by ``actor``).

    Returns the full key string (shown once: only its hash is kept) and what was stored.
    """
    token, stored = create_key(store, role, systems, name, env)
    details = {"kid": stored.kid, "role": stored.role, "systems": list(stored.systems)}
    _admin(store, actor, KEY_CREATED, details)
    return token, stored


def revoke_key(store: KeyAdminStore, kid: str, *, actor: str) -> None:
    """Revoke a key at once and put it on record (``key.revoked``); NotFound if no active key has that id."""
    if not store.revoke_api_key(kid, dt.datetime.now(dt.UTC)):
        raise NotFound(f"no active key {kid}")
    _admin(store, actor, KEY_REVOKED, {"kid": kid})


def list_keys(store: ApiKeyStore) -> list[ApiKey]:
    """Every key, oldest first, revoked ones included; :meth:`ApiKey.public_view` is what may be shown."""
    return store.api_keys()


def _admin(store: EntryWriter, actor: str, action: str, details: dict[str, Any]) -> None:
    entry = AdminEntry(
        id=uuid7(), system="*", ts=dt.datetime.now(dt.UTC), actor=actor, action=action, details=details
    )
    store.append(Pipeline().prepare_all([checked(entry)]))
