"""Key rotation: a new version of a key, and every data key under the old versions re-wrapped.

Payloads are never re-encrypted (each has its own data key); only the small wrapped keys beside them
change, and the entries, their leaves and every proof stay exactly as they were.

Old versions are *retired*, not destroyed, by :func:`rotate_key`: records sealed under them may still
be on their way (in an SDK's spool while the server is down, or sealed by a process that looked the
key up a moment before the rotation). :func:`retire_key` re-wraps whatever arrived since and then
destroys every version but the current one — run it once nothing old can still be in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlog.errors import KeyDestroyed, UsageError
from inferlog.keystore.base import KeyInfo, KeyStore
from inferlog.privacy.frames import SPOOL_KEY
from inferlog.privacy.seal import PSEUDONYM_KEY, Opener, Sealer, rewrap
from inferlog.retention.governance import Governance


@dataclass
class Rotation:
    name: str
    current: str  # the current version's ref
    rewrapped: int  # data keys now wrapped under the current version
    shredded: int  # data keys that could not be re-wrapped: their other key was already destroyed
    destroyed: int  # old versions destroyed


def _keystore(gov: Governance, name: str) -> KeyStore:
    if gov.keystore is None:
        raise UsageError("key rotation needs a key store ([keystore] in the policy)")
    if name == PSEUDONYM_KEY:
        raise UsageError(
            "the pseudonym key cannot be rotated: every stored pseudonym, and erasure by subject, depends on it"
        )
    if name == SPOOL_KEY:
        raise UsageError("the spool key cannot be rotated here: spools not yet delivered are sealed under it")
    return gov.keystore


def _live(keystore: KeyStore, name: str) -> list[KeyInfo]:
    return [k for k in keystore.list_keys(name) if k.name == name and k.destroyed_at is None]


def _rewrap_all(gov: Governance, keystore: KeyStore, versions: list[KeyInfo], batch: int) -> tuple[int, int]:
    opener = Opener(keystore)
    sealer = Sealer(keystore, lambda system: ())
    rewrapped = shredded = 0
    for info in versions:
        after = ""
        while pairs := gov.store.keys_wrapped_by(info.ref, after=after, limit=batch):
            updates = []
            for entry_id, wrapped in pairs:
                try:
                    updates.append((entry_id, rewrap(opener, sealer, entry_id, wrapped)))
                except KeyDestroyed:
                    shredded += 1  # its subject or epoch key is gone: nothing left to protect
            gov.store.rewrap(updates)
            rewrapped += len(updates)
            after = pairs[-1][0]
    return rewrapped, shredded


def rotate_key(gov: Governance, name: str, *, batch: int = 1000) -> Rotation:
    """Rotate the key ``name`` (``epoch:…`` or ``subject:…``): a new version, every data key re-wrapped."""
    keystore = _keystore(gov, name)
    old = _live(keystore, name)
    if not old:
        raise UsageError(f"no live key named {name!r}")
    current = keystore.rotate(name)
    rewrapped, shredded = _rewrap_all(gov, keystore, old, batch)
    gov.admin(
        "key.rotated",
        {"key": name, "current": current, "rewrapped": rewrapped, "shredded": shredded, "retired": len(old)},
    )
    return Rotation(name, current, rewrapped, shredded, 0)


def retire_key(gov: Governance, name: str, *, batch: int = 1000) -> Rotation:
    """Re-wrap what still uses old versions of ``name``, then destroy every version but the current."""
    keystore = _keystore(gov, name)
    live = _live(keystore, name)
    if not live:
        raise UsageError(f"no live key named {name!r}")
    current, old = live[-1], live[:-1]
    rewrapped, shredded = _rewrap_all(gov, keystore, old, batch)
    destroyed = sum(keystore.destroy(name, info.version) for info in old)
    gov.admin(
        "key.retired", {"key": name, "current": current.ref, "rewrapped": rewrapped, "destroyed": destroyed}
    )
    return Rotation(name, current.ref, rewrapped, shredded, destroyed)
