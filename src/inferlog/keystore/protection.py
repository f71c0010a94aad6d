"""The policy file and its key store, opened together into a :class:`Protection`."""

from __future__ import annotations

import os

from inferlog.keystore.base import KeyStore, open_keystore
from inferlog.privacy.policy import Policy, load_policy
from inferlog.privacy.protect import Protection


def load_protection(config: str | os.PathLike[str] | None) -> Protection:
    """The protection the policy file at ``config`` asks for (none without a file)."""
    policy = load_policy(config) if config else Policy.default()
    keystore: KeyStore | None = open_keystore(policy.keystore_path) if policy.keystore_path else None
    return Protection(policy, keystore)
