"""Erasure of one data subject (GDPR Art. 17) by crypto-shredding, with a deletion certificate.

Without a key store (the default install, no policy file) there is nothing to shred: the subject's
payloads are purged (matched by the subject as stored), and the admin entry names the subject by a
salted commitment whose salt only the certificate holds.

The subject's key is destroyed (so every copy of their sealed payloads, in backups, spools and old
exports, becomes noise), their payloads and wrapped data keys are purged from the log, and an
``admin`` entry records the erasure under the subject's *keyed* pseudonym, never the subject itself.
A signed checkpoint taken after that entry dates the erasure for auditors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from inferlog.errors import UsageError
from inferlog.privacy.seal import subject_name
from inferlog.record.canonical import format_timestamp
from inferlog.retention.governance import Governance
from inferlog.store.base import Purge, StoredCheckpoint

SUBJECT_ERASED = "subject.erased"


@dataclass
class ErasureCertificate:
    """What was erased, when, and the checkpoint that fixes the erasure in the log's history."""

    subject_ref: str  # the subject's keyed pseudonym
    erased_at: dt.datetime
    records: int  # entries whose payload was purged
    first_seq: int | None
    last_seq: int | None
    keys_destroyed: int
    admin_entry: str  # id of the subject.erased entry
    checkpoint: StoredCheckpoint | None
    subject_salt: str | None = None  # without a key store: the salt of subject_ref (hex), kept only here

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.subject_salt is None:
            del data["subject_salt"]
        data["erased_at"] = format_timestamp(self.erased_at)
        data["checkpoint"] = (
            None
            if self.checkpoint is None
            else {
                "size": self.checkpoint.size,
                "root": self.checkpoint.root.hex(),
                "note": self.checkpoint.note.decode("utf-8"),
            }
        )
        return {"certificate": "inferlog subject erasure", **data}


def erase(
    gov: Governance,
    subject: str,
    *,
    checkpoint: Callable[[], StoredCheckpoint] | None = None,
) -> ErasureCertificate:
    """Destroy a subject's key and payloads; refuse while a legal hold covers any of their entries."""
    subjects = gov.subjects(subject)
    salt = None
    if gov.keystore is None:  # the default install: no pseudonym key, so a commitment names the subject
        salt = os.urandom(16)
        ref = subject_commitment(subject, salt)
    else:
        ref = subjects[-1]
    holds = gov.holds()
    reach = gov.store.purge(Purge(subjects=subjects), dry_run=True).count
    free = gov.store.purge(Purge(subjects=subjects, keep=holds), dry_run=True).count
    named = [h.name for h in gov.policy.holds if h.subject == subject]
    if named or free != reach:
        which = ", ".join(named) or "a hold on a system or time range"
        raise UsageError(
            f"a legal hold ({which}) covers {reach - free or reach} of this subject's entries: "
            "lift it in the policy before erasing"
        )
    # Purge first: if the store refuses (PostgreSQL's application role may not), no key is gone yet.
    result = gov.store.purge(Purge(subjects=subjects))
    destroyed = gov.keystore.destroy(subject_name(ref)) if gov.keystore is not None else 0
    erased_at = dt.datetime.now(dt.UTC)
    entry_id = gov.admin(
        SUBJECT_ERASED,
        {
            "subject_ref": ref,
            "records": result.count,
            "first_seq": result.first_seq,
            "last_seq": result.last_seq,
            "keys_destroyed": destroyed,
        },
    )
    return ErasureCertificate(
        subject_ref=ref,
        erased_at=erased_at,
        records=result.count,
        first_seq=result.first_seq,
        last_seq=result.last_seq,
        keys_destroyed=destroyed,
        admin_entry=entry_id,
        checkpoint=checkpoint() if checkpoint is not None else None,
        subject_salt=salt.hex() if salt is not None else None,
    )


def subject_commitment(subject: str, salt: bytes) -> str:
    """``sha256:`` + SHA-256(salt || subject): names an erased subject in the log without a key store.

    The salt is only in the certificate, never in the log: whoever holds the certificate can show
    which subject an erasure entry is about; the log alone cannot be searched for a guessed name.
    """
    return "sha256:" + hashlib.sha256(salt + subject.encode("utf-8")).hexdigest()
