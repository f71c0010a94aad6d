"""Every exception inferlog raises, in one tree (factored out to avoid import loops).

Each class carries the HTTP status the server answers it with (``http_status``, inherited unless a
class says otherwise); the server's exception handler reads it, so this tree is the one place that
maps an error to a status. (V) marks a class that is also a ``ValueError``, (K) a ``KeyError`` (and
so are its subclasses), for callers that catch the built-in.

    InferlogError                500  anything inferlog raises on purpose
    ├── RecordInvalid (V)        422  a record or entry was refused at the edge (names field and reason)
    │   ├── ProtobufMissing      422  a protobuf value came, and the protobuf package is not installed
    │   └── SpanInvalid          422  one OTLP span cannot be read (counted as rejected; the rest go on)
    ├── NotDurable               503  a record could not be made durable (fail_closed, spool full, fsync)
    │   └── SpoolFull            503  the spool hit its size bound and stayed full past the block timeout
    ├── StoreError               500  the store could not do what was asked
    │   ├── StoreUnavailable     503  the store cannot be opened or reached
    │   ├── UnknownStore         500  no backend is registered for a URL's scheme
    │   └── Conflict             409  an id was appended twice with different content
    │       └── ModelConflict    409  a model version is registered again with another digest
    ├── NotFound (K)             404  no entry has that id
    ├── UsageError (V)           400  a caller asked for something that makes no sense (a closed log)
    │   └── BadParameter         422  one named parameter (a filter, a cursor, a time) is malformed
    ├── AuthError                401  no valid credentials: no API key, a malformed, wrong or revoked one
    ├── Forbidden                403  valid credentials, but the key's role or systems do not allow this
    ├── PayloadTooLarge          413  a request body is over the server's limit
    ├── UnsupportedMediaType     415  a request body is in an encoding this server cannot read
    ├── IntegrityError           500  the ledger does not verify (see inferlog.integrity.verify)
    │   ├── ProofError (V)       500  an inclusion or consistency proof does not lead to its root
    │   ├── NoteError (V)        500  a signed note or note key is malformed, or no known key signed it
    │   ├── CheckpointError (V)  500  a checkpoint body is malformed, or names another origin
    │   └── ContainerError       500  an evidence pack's zip is not laid out as inferlog writes one
    └── KeyDestroyed             410  an entry's payload was shredded: a key it needs was destroyed

The faces turn these into one line: the CLI prints ``str(error)``, the server answers
``{"error": "<class name>", "message": str(error)}`` with the class's status; nothing here carries
a traceback the user has to read. This module imports nothing of inferlog, so every layer (the pure
``ledger`` and ``record`` too) may raise from it.
"""

from __future__ import annotations

from typing import ClassVar


class InferlogError(Exception):
    """Base of every error inferlog raises on purpose."""

    http_status: ClassVar[int] = 500
    """The status the HTTP server answers this error with (a 5xx other than 503 means a bug)."""


class RecordInvalid(InferlogError, ValueError):
    """A record was refused at the edge; the message names the field and the reason."""

    http_status = 422

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


class ProtobufMissing(RecordInvalid):
    """The ``protobuf`` package is not installed, so protobuf values cannot be read.

    The Seldon sink answers it as :class:`UnsupportedMediaType` (415), with how to send JSON instead.
    """


class SpanInvalid(RecordInvalid):
    """One OTLP span cannot be read; the message says why (the request's other spans go on)."""


class NotDurable(InferlogError):
    """A record could not be made durable; with ``fail_closed=True`` the caller must not act on it."""

    http_status = 503


class SpoolFull(NotDurable):
    """The spool reached its size bound and did not drain within the block timeout."""


class StoreError(InferlogError):
    """The store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""

    http_status = 503


class UnknownStore(StoreError):
    """No store backend is registered for the URL's scheme."""


class Conflict(StoreError):
    """An id that is already in the log was appended again with different content."""

    http_status = 409


class ModelConflict(Conflict):
    """A model version is registered again with another digest: a version names one artifact."""


class NotFound(InferlogError, KeyError):
    """No entry has that id."""

    http_status = 404

    def __str__(self) -> str:  # KeyError quotes its argument; we want a plain sentence
        return str(self.args[0]) if self.args else "not found"


class UsageError(InferlogError, ValueError):
    """A caller asked for something that makes no sense (a bad filter, a closed log)."""

    http_status = 400


class BadParameter(UsageError):
    """One named parameter is malformed or out of range (HTTP 422 naming it; CLI: one line).

    ``field`` is the parameter's HTTP name (``since``, ``cursor``, ``attr``); the CLI shows it as
    its option (``--since``).
    """

    http_status = 422

    def __init__(self, reason: str, *, field: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class AuthError(InferlogError):
    """No valid credentials: no API key, a malformed or wrong one, or a revoked one."""

    http_status = 401


class Forbidden(InferlogError):
    """Valid credentials, but the key's role or systems do not allow this."""

    http_status = 403


class PayloadTooLarge(InferlogError):
    """The request body is over the server's limit."""

    http_status = 413


class UnsupportedMediaType(InferlogError):
    """The request body is in an encoding this server cannot read."""

    http_status = 415


class IntegrityError(InferlogError):
    """The ledger does not verify."""


class ProofError(IntegrityError, ValueError):
    """A Merkle proof, or the sizes and roots it was checked against, do not verify."""


class NoteError(IntegrityError, ValueError):
    """A signed note or note key is malformed, or its signatures do not verify."""


class CheckpointError(IntegrityError, ValueError):
    """A checkpoint body is malformed or a checkpoint field is invalid (another origin, say)."""


class ContainerError(IntegrityError):
    """An evidence pack's zip is not laid out as inferlog writes one (a byte outside the files changed)."""


class KeyDestroyed(InferlogError):
    """An entry cannot be opened because a key it was sealed under was destroyed (erasure, retention)."""

    http_status = 410
