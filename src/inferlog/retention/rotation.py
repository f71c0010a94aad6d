"""Key rotation: a new version of a key, and every data key under the old one re-wrapped.

Payloads are never re-encrypted (each has its own data key); only the small wrapped keys beside them
change, and the entries, their leaves and every proof stay exactly as they were. The old version is
destroyed once nothing refers to it any more.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlog.errors import UsageError
from inferlog.privacy.seal import Opener, Sealer, rewrap
from inferlog.retention.governance import Governance


@dataclass
class Rotation:
    name: str
    new_ref: str
    rewrapped: int
    destroyed: int


def rotate_key(gov: Governance, name: str, *, batch: int = 1000) -> Rotation:
    """Rotate the key ``name`` (``epoch:…`` or ``subject:…``): re-wrap, then destroy the old versions."""
    keystore = gov.keystore
    if keystore is None:
        raise UsageError("key rotation needs a key store ([keystore] in the policy)")
    old = [k for k in keystore.list_keys(name) if k.name == name and k.destroyed_at is None]
    if not old:
        raise UsageError(f"no live key named {name!r}")
    new_ref = keystore.rotate(name)
    opener = Opener(keystore)
    sealer = Sealer(keystore, lambda system: ())
    rewrapped = 0
    for info in old:
        after = ""
        while pairs := gov.store.keys_wrapped_by(info.ref, after=after, limit=batch):
            gov.store.rewrap([(i, rewrap(opener, sealer, i, wrapped)) for i, wrapped in pairs])
            rewrapped += len(pairs)
            after = pairs[-1][0]
    destroyed = sum(keystore.destroy(name, info.version) for info in old)
    gov.admin("key.rotated", {"key": name, "new": new_ref, "rewrapped": rewrapped, "destroyed": destroyed})
    return Rotation(name, new_ref, rewrapped, destroyed)
