"""Privacy: the policy file, and the processors that redact and pseudonymize entries before they are stored.

Pure, like ``record`` and ``ledger``: no database, socket or framework; entries in, entries out.
Each processor is a ``Callable[[Entry], Entry]`` for the ingest pipeline, idempotent (running it at
the SDK and again at the store changes nothing the second time), and returns an entry it has nothing
to change as the very same object.
"""

from inferlog.privacy.paths import Selector, parse_path
from inferlog.privacy.policy import (
    Duration,
    Hold,
    Policy,
    SystemPolicy,
    load_policy,
    parse_policy,
)
from inferlog.privacy.pseudonym import Pseudonymizer, is_pseudonym, pseudonym
from inferlog.privacy.redact import Detector, Redactor, RedactRule, mask, redact_text

__all__ = [
    "Detector",
    "Duration",
    "Hold",
    "Policy",
    "Pseudonymizer",
    "RedactRule",
    "Redactor",
    "Selector",
    "SystemPolicy",
    "is_pseudonym",
    "load_policy",
    "mask",
    "parse_path",
    "parse_policy",
    "pseudonym",
    "redact_text",
]
