"""A policy made into processors: redact, then pseudonymize, then seal — per system, at the edge.

The order matters. Redaction runs on plaintext (masks must be found before encryption hides them),
pseudonyms replace identifiers before sealing binds the subject's key to the pseudonym, and sealing
comes last so that what is spooled and stored is already ciphertext. Every step is idempotent, so the
same ``Protection`` can run in the SDK (before the spool) and again where the entry is stored.
"""

from __future__ import annotations

from collections.abc import Callable

from inferlog.errors import RecordInvalid
from inferlog.privacy.policy import Policy
from inferlog.privacy.pseudonym import Pseudonymizer
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

    def steps(self, system: str) -> list[Step]:
        """The processors for one system's entries, built once."""
        steps = self._steps.get(system)
        if steps is None:
            rules = self.policy.for_system(system)
            steps = []
            if rules.redact:
                steps.append(Redactor(rules.redact, self.policy.detectors))
            # With sealing on, the Sealer pseudonymizes the subject itself (it names the subject's key).
            paths = [p for p in rules.pseudonymize if not (self.sealer is not None and p == "subject")]
            if paths and self.keyring is not None:
                steps.append(Pseudonymizer(self.keyring.current(PSEUDONYM_KEY)[1], paths))
            if self.sealer is not None:
                ensure_usable(self._encrypted_fields(system))
                steps.append(self.sealer)
            self._steps[system] = steps
        return steps

    def __call__(self, entry: Entry) -> Entry:
        if entry.sealed is not None:  # protected at the edge already; never touch ciphertext
            if entry.sealed.dek is None and entry.sealed.fields:
                raise RecordInvalid(
                    "a sealed entry must arrive with its wrapped data key (sealed.dek): without it, "
                    "nobody could ever open it",
                    field="sealed.dek",
                )
            return entry
        for step in self.steps(entry.system):
            entry = step(entry)
        return entry

    @property
    def active(self) -> bool:
        """Whether this policy changes entries at all (if not, callers skip it on the hot path)."""
        return self.keyring is not None or any(
            rules.redact or rules.pseudonymize for rules in self.policy.all_systems()
        )
