"""API keys and roles.

A key looks like ``ilog_live_<kid>_<secret>_<check>``: a prefix secret scanners can find, a key id to
look it up by, 32 random bytes, and a CRC32 checksum so a scanner can tell a real key from a random
string offline (GitHub's token design). Only ``SHA-256(secret)`` is stored; the key is shown once.
Secrets are compared in constant time.

Roles: ``ingest`` appends; ``reader`` reads inference and feedback entries of its systems; ``auditor``
reads everything of its systems, proofs and the access trail; ``admin`` manages keys. A key is scoped to
one or more systems (``*`` for all).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inferlog.errors import InferlogError, NotFound, UsageError
from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid7
from inferlog.record.model import AdminEntry
from inferlog.record.validate import checked
from inferlog.store.base import ROLES, ApiKey
from inferlog.store.protocols import ApiKeyStore, EntryWriter, KeyAdminStore

PREFIX = "ilog"
_KEY_RE = re.compile(
    r"^ilog_(?P<env>[a-z]+)_(?P<kid>[0-9a-f]{12})_(?P<secret>[0-9A-Za-z]{43})_(?P<check>[0-9a-z]{6})$"
)
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class AuthError(InferlogError):
    """No valid credentials (HTTP 401)."""


class Forbidden(InferlogError):
    """Valid credentials, but not for this (HTTP 403)."""


def _base62(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    number = zlib.crc32(body.encode())
    out = []
    for _ in range(6):
        number, digit = divmod(number, 36)
        out.append("0123456789abcdefghijklmnopqrstuvwxyz"[digit])
    return "".join(reversed(out))


def hash_secret(secret: str) -> bytes:
    # Machine-made 256-bit secrets: a fast hash suffices and keeps lookups cheap (no password
    # stretching is needed for secrets nobody chose).
    return hashlib.sha256(secret.encode()).digest()


def create_key(
    store: ApiKeyStore, role: str, systems: Sequence[str], name: str, env: str = "live"
) -> tuple[str, ApiKey]:
    """Make and keep a new key; returns the full key string (shown once) and what was stored."""
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
    return f"{body}_{_checksum(body)}", stored


def issue_key(
    store: KeyAdminStore, role: str, systems: Sequence[str], name: str, *, actor: str, env: str = "live"
) -> tuple[str, ApiKey]:
    """Make a key and put it on record (a ``key.created`` admin entry): the one way the faces do it.

    The HTTP route and ``inferlog keys create`` both call this, so no key appears unrecorded.
    """
    token, stored = create_key(store, role, systems, name, env)
    _admin(
        store, actor, "key.created", {"kid": stored.kid, "role": stored.role, "systems": list(stored.systems)}
    )
    return token, stored


def revoke_key(store: KeyAdminStore, kid: str, *, actor: str) -> None:
    """Revoke a key at once and put it on record (``key.revoked``); NotFound if no active key has that id."""
    if not store.revoke_api_key(kid, dt.datetime.now(dt.UTC)):
        raise NotFound(f"no active key {kid}")
    _admin(store, actor, "key.revoked", {"kid": kid})


def _admin(store: EntryWriter, actor: str, action: str, details: dict[str, Any]) -> None:
    entry = AdminEntry(
        id=uuid7(), system="*", ts=dt.datetime.now(dt.UTC), actor=actor, action=action, details=details
    )
    store.append(Pipeline().prepare_all([checked(entry)]))


def parse_key(token: str) -> tuple[str, str]:
    """(kid, secret) of a well-formed key whose checksum holds; AuthError otherwise."""
    match = _KEY_RE.match(token.strip())
    if not match:
        raise AuthError("malformed API key")
    body = token.strip()[: -len(match.group("check")) - 1]
    if not hmac.compare_digest(_checksum(body), match.group("check")):
        # The checksum covers the secret: a mistyped or truncated secret lands here, not in
        # authenticate(). To the caller it is the same thing: not a key this server issued.
        raise AuthError("invalid API key (its checksum does not match: was it copied whole?)")
    return match.group("kid"), match.group("secret")


def authenticate(store: ApiKeyStore, token: str) -> ApiKey:
    """The stored key a presented token belongs to; AuthError if unknown, wrong or revoked."""
    kid, secret = parse_key(token)
    key = store.get_api_key(kid)
    # Compare even when the kid is unknown, so timing does not tell which kids exist.
    expected = key.secret_hash if key is not None else b"\0" * 32
    if not hmac.compare_digest(expected, hash_secret(secret)) or key is None:
        raise AuthError("invalid API key")
    if key.revoked_at is not None:
        raise AuthError("this API key was revoked")
    return key


@dataclass(frozen=True)
class Principal:
    """Who is asking: a key, or everyone when the server runs without auth (loopback only)."""

    name: str
    role: str
    systems: tuple[str, ...]
    kid: str | None = None

    def allows(self, *roles: str) -> bool:
        return self.role in roles or self.role == "*"

    def covers(self, system: str) -> bool:
        return "*" in self.systems or system in self.systems

    def require(self, *roles: str) -> None:
        if not self.allows(*roles):
            raise Forbidden(f"{_a(self.role)} {self.role} key cannot do this (needs {' or '.join(roles)})")

    def require_system(self, system: str) -> None:
        if not self.covers(system):
            raise Forbidden(f"this key is not allowed for system {system!r}")


def _a(word: str) -> str:
    """The indefinite article for ``word``: "an ingest key", "an admin key", "a reader key"."""
    return "an" if word[:1].lower() in "aeiou" else "a"


OPEN = Principal("anonymous (auth disabled)", "*", ("*",))


def principal_of(key: ApiKey) -> Principal:
    return Principal(f"{key.name} ({key.kid})", key.role, key.systems, key.kid)
