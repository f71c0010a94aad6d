"""A policy made into processors: redact, then pseudonymize, then seal — per system, at the edge.

The order matters. Redaction runs on plaintext (masks must be found before encryption hides them),
pseudonyms replace identifiers before sealing binds the subject's key to the pseudonym, and sealing
comes last so that what is spooled and stored is already ciphertext. Every step is idempotent, so the
same ``Protection`` can run in the SDK (before the spool) and again where the entry is stored.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.privacy.policy import Policy
from inferlog.privacy.pseudonym import Pseudonymizer, is_pseudonym
from inferlog.privacy.redact import Redactor
from inferlog.privacy.seal import PSEUDONYM_KEY, Keyring, Opener, Sealer, ensure_usable
from inferlog.record.model import Entry

Step = Callable[[Entry], Entry]


class Protection:
    """The Processor a policy asks for (redaction, pseudonymization, encryption), and its Opener."""

    def __init__(self, policy: Policy, keyring: Keyring | None = None) -> None:
        self.policy = policy
        self.keyring = keyring
        self._steps: dict[str, list[Step]] = {}
        self._edge: dict[str, list[Step]] = {}
        self._usable: set[str] = set()
        self._fields: dict[str, list[str]] = {}
        self.sealer = Sealer(keyring, self._encrypted_fields) if keyring is not None else None
        self.opener = Opener(keyring) if keyring is not None else None

    def _encrypted_fields(self, system: str) -> list[str]:
        fields = self._fields.get(system)
        if fields is None:
            fields = self._fields[system] = (
                list(self.policy.for_system(system).encrypt) if self.keyring else []
            )
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

    def steps(self, system: str) -> list[Step]:
        """Every processor for one system's entries, built once: the edge steps, then sealing."""
        steps = self._steps.get(system)
        if steps is None:
            steps = list(self.edge_steps(system))
            if self.sealer is not None:
                ensure_usable(self._encrypted_fields(system))
                steps.append(self.sealer)
            self._steps[system] = steps
        return steps

    def __call__(self, entry: Entry) -> Entry:
        if _already_sealed(entry):
            return entry
        for step in self.steps(entry.system):
            entry = step(entry)
        return entry

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
        if self.sealer is not None and subject is not None and not is_pseudonym(subject):
            entry = msgspec.structs.replace(entry, subject=self.sealer.pseudonym_of(subject))
        return entry

    def seal(self, entry: Entry) -> Entry:
        """Seal only (after :meth:`edge`); entries of systems without encrypted fields pass through."""
        if self.sealer is None or _already_sealed(entry):
            return entry
        if entry.system not in self._usable:
            ensure_usable(self._encrypted_fields(entry.system))
            self._usable.add(entry.system)
        return self.sealer(entry)

    @property
    def seals(self) -> bool:
        """Whether this policy seals anything (it has a key store)."""
        return self.sealer is not None

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
