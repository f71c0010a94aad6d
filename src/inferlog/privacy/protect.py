"""A policy made into processors: redact, then pseudonymize, then seal — per system, at the edge.

The order matters. Redaction runs on plaintext (masks must be found before encryption hides them),
pseudonyms replace identifiers before sealing binds the subject's key to the pseudonym, and sealing
comes last so that what is spooled and stored is already ciphertext. Every step is idempotent, so the
same ``Protection`` can run in the SDK (before the spool) and again where the entry is stored.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from inferlog.errors import IntegrityError, KeyDestroyed, RecordInvalid, UsageError
from inferlog.privacy.policy import Policy
from inferlog.privacy.pseudonym import Pseudonymizer
from inferlog.privacy.redact import Redactor
from inferlog.privacy.seal import PSEUDONYM_KEY, Keyring, Opener, Sealer, ensure_usable, subject_ref
from inferlog.record.model import Entry

Step = Callable[[Entry], Entry]


class Protection:
    """The Processor a policy asks for (redaction, pseudonymization, encryption), and its Opener."""

    def __init__(self, policy: Policy, keyring: Keyring | None = None) -> None:
        self.policy = policy
        self.keyring = keyring
        self._edge: dict[str, list[Step]] = {}
        self._fields: dict[str, list[str]] = {}
        self.sealer: Sealer | None = None
        self.opener: Opener | None = None
        if keyring is not None:
            for rules in policy.all_systems():  # the defaults and every system section: all there is
                ensure_usable(rules.encrypt)
            self.sealer = Sealer(keyring, self._encrypted_fields)
            self.opener = Opener(keyring)

    def _encrypted_fields(self, system: str) -> list[str]:
        fields = self._fields.get(system)
        if fields is None:
            fields = self._fields[system] = list(self.policy.for_system(system).encrypt)
        return fields

    def edge_steps(self, system: str) -> list[Step]:
        """Redaction and pseudonyms for one system's entries (built once): what runs before a spool."""
        steps = self._edge.get(system)
        if steps is None:
            rules = self.policy.for_system(system)
            steps = []
            if rules.redact:
                steps.append(Redactor(rules.redact, self.policy.detectors))
            # With sealing on, the Sealer pseudonymizes the subject itself (it names the subject's key).
            paths = [p for p in rules.pseudonymize if not (self.sealer is not None and p == "subject")]
            if paths and self.keyring is not None:
                steps.append(Pseudonymizer(self.keyring.current(PSEUDONYM_KEY)[1], paths))
            self._edge[system] = steps
        return steps

    def __call__(self, entry: Entry) -> Entry:
        """Everything the policy asks for: the edge steps, then sealing."""
        return self.seal(self.edge(entry))

    def admit(self, entry: Entry) -> Entry:
        """The policy for an entry from a producer this process does not trust (HTTP, sinks, imports).

        A ``sealed`` block is a claim, not a credential: anyone can write one beside plaintext. It is
        accepted only if this log's own keys open it (known key references, the key commitment, every
        sealed field decrypting); the entry is then protected again from its plaintext, so the whole
        policy applies to every field, the ones the producer left in clear included. A claim that
        cannot be checked is refused, naming the field.
        """
        if entry.sealed is not None:
            entry = self.open_claim(entry)
        elif not self.active:
            return entry
        return self.seal(self.edge(entry))

    def open_claim(self, entry: Entry) -> Entry:
        """A claimed seal opened with this log's keys (RecordInvalid if it cannot be); unsealed as is."""
        sealed = entry.sealed
        if sealed is None:
            return entry
        if self.opener is None:
            raise RecordInvalid(
                "this log has no key store, so it cannot check a seal made elsewhere; send the fields "
                "in clear and the log applies its policy",
                field="sealed",
            )
        if sealed.dek is None or not sealed.fields:
            field = "sealed.dek" if sealed.dek is None else "sealed.fields"
            raise RecordInvalid(
                "a sealed entry must name its sealed fields and carry their wrapped data key", field=field
            )
        try:
            return self.opener.open(entry, sealed.dek)
        except (IntegrityError, KeyDestroyed, UsageError) as exc:
            raise RecordInvalid(
                f"the seal does not check out with this log's keys: {exc}", field="sealed"
            ) from None

    def edge(self, entry: Entry) -> Entry:
        """Redact and pseudonymize only (the SDK's ``record()``; sealing follows on the shipper thread)."""
        if _already_sealed(entry):
            return entry
        for step in self.edge_steps(entry.system):
            entry = step(entry)
        return entry

    def comparable(self, entry: Entry) -> Entry:
        """What the log keeps of an entry, sealing aside: edge steps, and the subject as its pseudonym.

        Two sealings of one entry never match byte for byte; this does, so callers compare it.
        """
        entry = self.edge(entry)
        subject = getattr(entry, "subject", None)
        if self.keyring is not None and subject is not None:
            entry = msgspec.structs.replace(entry, subject=subject_ref(self.keyring, subject))
        return entry

    def seal(self, entry: Entry) -> Entry:
        """Seal only (after :meth:`edge`); entries of systems without encrypted fields pass through."""
        if self.sealer is None or _already_sealed(entry):
            return entry
        return self.sealer(entry)

    @property
    def active(self) -> bool:
        """Whether this policy changes entries at all (if not, callers skip it on the hot path)."""
        return self.keyring is not None or any(
            rules.redact or rules.pseudonymize for rules in self.policy.all_systems()
        )


def _already_sealed(entry: Entry) -> bool:
    """Sealed at the edge already: never touch ciphertext again (but refuse one nobody could open)."""
    if entry.sealed is None:
        return False
    if entry.sealed.dek is None and entry.sealed.fields:
        raise RecordInvalid(
            "a sealed entry must arrive with its wrapped data key (sealed.dek): without it, nobody could ever open it",
            field="sealed.dek",
        )
    return True
