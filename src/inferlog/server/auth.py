"""Who is calling: a presented API key checked against the store, and what its role and systems allow.

The key format, and making and revoking keys on record, are :mod:`inferlog.apikeys`; this module is the
HTTP side of them. Secrets are compared in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from inferlog.apikeys import KEY_PATTERN, checksum, hash_secret
from inferlog.errors import AuthError, Forbidden
from inferlog.store.base import ApiKey
from inferlog.store.protocols import ApiKeyStore


def parse_key(token: str) -> tuple[str, str]:
    """(kid, secret) of a well-formed key whose checksum holds; AuthError otherwise."""
    match = KEY_PATTERN.match(token.strip())
    if not match:
        raise AuthError("malformed API key")
    body = token.strip()[: -len(match.group("check")) - 1]
    if not hmac.compare_digest(checksum(body), match.group("check")):
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
