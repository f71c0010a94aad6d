"""Keyed pseudonyms: the same identifier always becomes the same token, unreadable without the key.

``pseudonym(key, "customer-42")`` is ``"pse_"`` + the first 16 bytes of HMAC-SHA256 in hex. Why
keyed: a plain hash of an identifier (an e-mail, a customer number) is reversed by hashing every
candidate; an HMAC is not, as long as the key stays in the key store. Why stable: a reviewer can
still follow one person's records through the log, and an erasure request can find them.

Why the prefix: a token is recognisable, so pseudonymizing twice is the same as once — the SDK and
the store can both run the same Pseudonymizer.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from typing import Any

from inferlog.errors import UsageError
from inferlog.privacy.paths import E, Selector

PREFIX = "pse_"
MIN_KEY_BYTES = 16
_TOKEN = re.compile(r"pse_[0-9a-f]{32}")
_TOKEN_LENGTH = len(PREFIX) + 32


def pseudonym(key: bytes, value: str) -> str:
    """``"pse_" + HMAC-SHA256(key, value)[:16].hex()`` (value as UTF-8, exactly as given)."""
    return PREFIX + hmac.digest(key, value.encode("utf-8"), "sha256")[:16].hex()


def is_pseudonym(value: object) -> bool:
    """Whether ``value`` is a token :func:`pseudonym` could have made."""
    return isinstance(value, str) and len(value) == _TOKEN_LENGTH and _TOKEN.fullmatch(value) is not None


class Pseudonymizer:
    """The Processor that replaces identifiers at the given paths by their keyed pseudonyms.

    Strings and integers (``42`` and ``"42"`` give the same token) are replaced; values that already
    are pseudonyms, empty strings, booleans, floats and ``None`` are left as they are, and so are
    entries already sealed (pseudonymized, then encrypted, at the edge).
    """

    def __init__(self, key: bytes, paths: Iterable[str] = ("subject",)) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise UsageError(f"a pseudonym key needs at least {MIN_KEY_BYTES} random bytes, got {len(key)}")
        self._key = bytes(key)
        self.selector = Selector(paths)

    def __repr__(self) -> str:
        return f"Pseudonymizer(paths={list(self.selector.paths)!r})"

    def token(self, value: Any) -> Any:
        """The pseudonym of one leaf value (the value itself when it is not an identifier)."""
        if isinstance(value, str):
            if not value or is_pseudonym(value):
                return value
            return pseudonym(self._key, value)
        if isinstance(value, int) and not isinstance(value, bool):
            return pseudonym(self._key, str(value))
        return value

    def __call__(self, entry: E) -> E:
        if getattr(entry, "sealed", None) is not None:
            return entry  # pseudonymized before it was sealed; never touch ciphertext
        return self.selector.map_values(entry, self.token)
