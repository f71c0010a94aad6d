"""Keep and forget correctly: retention by policy, legal holds, subject erasure, key rotation.

Every one of these removes payloads and keys, never leaves: the Merkle tree, its proofs and the
signed checkpoints stay valid, and each action appends an ``admin`` entry that says what was done.
"""

from __future__ import annotations

from inferlog.retention.erasure import ErasureCertificate, erase
from inferlog.retention.governance import Governance
from inferlog.retention.purge import RetentionPlan, SystemPlan, apply_retention, plan_retention
from inferlog.retention.rotation import retire_key, rotate_key

__all__ = [
    "ErasureCertificate",
    "Governance",
    "RetentionPlan",
    "SystemPlan",
    "apply_retention",
    "erase",
    "plan_retention",
    "retire_key",
    "rotate_key",
]
