"""Every exception inferlog raises, in one tree (factored out to avoid import loops).

    InferlogError
    ├── RecordInvalid          a record or entry was refused at the edge (names field and reason)
    ├── NotDurable             a record could not be made durable (fail_closed, spool full, fsync failed)
    │   └── SpoolFull          the spool hit its size bound and stayed full past the block timeout
    ├── StoreError             the store could not do what was asked
    │   ├── StoreUnavailable   the store cannot be opened or reached
    │   ├── UnknownStore       no backend is registered for a URL's scheme
    │   └── Conflict           an id was appended twice with different content
    ├── NotFound               no entry has that id
    ├── UsageError             a caller asked for something that makes no sense (bad filter, closed log)
    │   └── BadParameter       one named parameter (a filter, a cursor, a time) is malformed or out of range
    ├── IntegrityError         the ledger does not verify (see inferlog.verify)
    └── KeyDestroyed           an entry's payload was shredded: a key it needs was destroyed

The faces turn these into one line: the CLI prints ``str(error)``; nothing here carries a traceback
the user has to read.
"""

from __future__ import annotations


class InferlogError(Exception):
    """Base of every error inferlog raises on purpose."""


class RecordInvalid(InferlogError, ValueError):
    """A record was refused at the edge; the message names the field and the reason."""

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None) -> None:
        where = []
        if index is not None:
            where.append(f"record {index}")
        if field:
            where.append(f"field `{field}`")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
        self.field = field
        self.index = index
        self.reason = message


class NotDurable(InferlogError):
    """A record could not be made durable; with ``fail_closed=True`` the caller must not act on it."""


class SpoolFull(NotDurable):
    """The spool reached its size bound and did not drain within the block timeout."""


class StoreError(InferlogError):
    """The store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""


class UnknownStore(StoreError):
    """No store backend is registered for the URL's scheme."""


class Conflict(StoreError):
    """An id that is already in the log was appended again with different content."""


class NotFound(InferlogError, KeyError):
    """No entry has that id."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a plain sentence
        return str(self.args[0]) if self.args else "not found"


class UsageError(InferlogError, ValueError):
    """A caller asked for something that makes no sense (a bad filter, a closed log)."""


class BadParameter(UsageError):
    """One named parameter is malformed or out of range (HTTP 422 naming it; CLI: one line).

    ``field`` is the parameter's HTTP name (``since``, ``cursor``, ``attr``); the CLI shows it as
    its option (``--since``).
    """

    def __init__(self, reason: str, *, field: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class IntegrityError(InferlogError):
    """The ledger does not verify."""


class KeyDestroyed(InferlogError):
    """An entry cannot be opened because a key it was sealed under was destroyed (erasure, retention)."""
