"""The Log: the SDK's handle on an inference log.

``record()`` is on the model's hot path, so at the default ``process`` durability it only builds the
entry, encodes it (msgpack) and copies it into the memory-mapped spool: no fsync, no database call,
no lock held across I/O. Background threads sync and ship (see :mod:`inferlog.sdk.shipper`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import msgspec

from inferlog.config import DURABILITY_LEVELS
from inferlog.errors import NotDurable, NotFound, RecordInvalid, StoreUnavailable, UsageError
from inferlog.ingest import Ingestor
from inferlog.ingest.audit import counts_by_system, os_user, record_read
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.proofs import InclusionProof
from inferlog.integrity.tree import inclusion
from inferlog.keystore.reveal import reveal
from inferlog.lineage import (
    UNVERSIONED,
    ModelRegistry,
    Registration,
    StoreRegistrations,
    card_of,
    register_model,
    registered_models,
)
from inferlog.model_schemas import ModelSchema, SchemaSource, check_schema, model_schemas, record_schema
from inferlog.privacy.frames import FrameCipher
from inferlog.privacy.protect import Protection
from inferlog.record.ids import is_uuid, uuid7
from inferlog.record.model import (
    REF_MAX_LENGTH,
    SOURCES,
    VERIFICATIONS,
    Biometric,
    Entry,
    ErrorInfo,
    FeedbackEntry,
    InferenceRecord,
    Model,
    Source,
    StoredEntry,
    Verification,
)
from inferlog.record.schema import checked_biometric, stamped
from inferlog.record.validate import (
    LONE_SURROGATE,
    check_storable,
    encodable,
    shallow,
)
from inferlog.sdk.capture import Call, decorate
from inferlog.sdk.http import HttpReader
from inferlog.sdk.periods import PeriodOfUse
from inferlog.sdk.shipper import Counters, Shipper
from inferlog.sdk.spool import SpoolWriter
from inferlog.sdk.transport import Transport
from inferlog.store.base import Page, Query, StoredCheckpoint
from inferlog.store.protocols import Store

log = logging.getLogger("inferlog")

Durability = Literal["process", "machine"]
F = TypeVar("F", bound=Callable[..., Any])

_UTC = dt.UTC
_INF = float("inf")
_now = dt.datetime.now
_DROP_LOG_EVERY = 10.0  # seconds between two "records were NOT logged" lines while drops go on
_OPTIONAL_STR = ("request_id", "trace_id", "span_id", "parent_id", "session_id", "subject", "actor")


def _enc_hook(obj: Any) -> Any:
    """Make common ML values JSON-able: numpy arrays and scalars, pandas frames and series."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        try:
            return to_dict(orient="records")
        except TypeError:
            return to_dict()
    raise TypeError(f"a value of type {type(obj).__name__} is not JSON")


_live_logs: weakref.WeakSet[Log] = weakref.WeakSet()
DEFAULT_READ_PURPOSE = "application read (sdk)"


def _after_fork_in_child() -> None:
    """Mark every Log for a restart on first use; a parent thread may have held its lifecycle lock."""
    for instance in list(_live_logs):
        instance._lifecycle = threading.Lock()
        instance._spool.abandon_after_fork()
        instance._forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_at_exit() -> None:
    """At interpreter exit: deliver what every open Log still holds (each for at most its ``exit_timeout``).

    A script that records and ends without ``close()`` would otherwise leave acknowledged records in
    the spool until some later program opens the log. Registered when this module is imported, so it
    runs after the user's own exit handlers (which may still record). A forked child's inherited
    Logs belong to its parent and are left alone.
    """
    for instance in list(_live_logs):
        if instance._closed or instance._forked or instance.exit_timeout <= 0:
            continue
        try:
            if not instance.close(timeout=instance.exit_timeout):
                log.warning(
                    "inferlog: %d record(s) not delivered within %.1fs at exit; they stay in the spool and "
                    "the next open of this log delivers them",
                    instance.pending(), instance.exit_timeout,
                )  # fmt: skip
        except Exception:
            log.exception("inferlog: closing the log at exit failed; the spool keeps what was not delivered")


atexit.register(_close_at_exit)


class Log:
    """A handle for recording inferences and reading them back. Thread-safe; use one per process."""

    def __init__(
        self,
        transport: Transport,
        *,
        system: str,
        spool_dir: str | os.PathLike[str],
        store: Store | None = None,
        durability: Durability = "process",
        fail_closed: bool = False,
        spool_segment_bytes: int = 16 * 1024 * 1024,
        spool_max_bytes: int = 1024 * 1024 * 1024,
        block_timeout: float = 5.0,
        commit_interval: float = 0.005,
        batch_size: int = 1000,
        checkpointer: Checkpointer | None = None,
        reader: HttpReader | None = None,
        protection: Protection | None = None,
        exit_timeout: float = 5.0,
        lineage: ModelRegistry | None = None,
    ) -> None:
        if durability not in DURABILITY_LEVELS:
            raise UsageError(f"durability must be 'process' or 'machine', got {durability!r}")
        if not system:
            raise UsageError("system must name the AI system these records belong to")
        self.system = system
        self.durability = durability
        self.fail_closed = fail_closed
        self.exit_timeout = exit_timeout  # how long interpreter exit waits to deliver what is pending
        self.transport = transport
        self._valid_models: set[Model] = set()  # models record() has checked (a handful per process)
        self._schemas_seen: set[tuple[str, str, str]] = set()  # schemas capture_schema() has recorded
        self._schema_lock = threading.Lock()
        self.store = store
        self.reader = reader  # reads through a server: each states a purpose (see HttpReader)
        # Registered models: record() fills a model's missing digest/uri from this copy (lineage.py).
        self.lineage = lineage if lineage is not None else _registry(store, reader)
        self.checkpointer = checkpointer
        # Redaction and pseudonyms run in record(), before the spool; with a key store the frame is
        # sealed whole there (one AES-GCM call), and the shipper seals the fields (see privacy.frames).
        self.protection = protection
        self._protect = protection.edge if protection is not None and protection.active else None
        self._frames = FrameCipher(protection.keyring) if protection and protection.keyring else None
        self._seal = protection.seal if protection is not None else _unchanged
        self.counters = Counters()
        self._spool_args = {
            "segment_bytes": spool_segment_bytes,
            "max_bytes": spool_max_bytes,
            "block_timeout": block_timeout,
        }
        self._ship_args = {"commit_interval": commit_interval, "batch_size": batch_size}
        self._spool_root = Path(spool_dir)
        self._machine = durability == "machine"
        self._sync_timeout = max(5.0, commit_interval * 100)
        self._encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
        self._lifecycle = threading.Lock()
        self._drops_unreported = 0
        self._next_drop_log = 0.0
        self._closed = False
        self._forked = False
        self._start()
        _live_logs.add(self)

    def _start(self) -> None:
        self._spool = SpoolWriter(self._spool_root, **self._spool_args)  # type: ignore[arg-type]
        after = self.checkpointer.maybe_checkpoint if self.checkpointer is not None else None
        self._shipper = Shipper(
            self._spool,
            self.transport,
            self.counters,
            after_delivery=after,
            open_frame=self._frames.open if self._frames is not None else None,
            seal=self.protection.seal if self._frames is not None and self.protection is not None else None,
            **self._ship_args,  # type: ignore[arg-type]
        )

    def _restart_after_fork(self) -> None:
        with self._lifecycle:
            if not self._forked:
                return
            self._spool.abandon_after_fork()
            self._shipper.forget_after_fork()
            self.counters = Counters()
            self._start()
            self._forked = False

    # -- writing ------------------------------------------------------------------------------

    def record(
        self,
        *,
        model: Model,
        input: Any = None,
        output: Any = None,
        latency_ms: float | None = None,
        status: Literal["ok", "error"] = "ok",
        error: ErrorInfo | BaseException | None = None,
        parameters: Mapping[str, Any] | None = None,
        attributes: Mapping[str, Any] | None = None,
        subject: str | None = None,
        actor: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_id: str | None = None,
        session_id: str | None = None,
        id: str | None = None,
        ts: dt.datetime | None = None,
        source: Source = "sdk",
        biometric: Biometric | Mapping[str, Any] | None = None,
    ) -> str:
        """Record one inference; returns its id. Durable (at the Log's level) when it returns.

        ``source`` says which producer made it; capture layers built on the SDK (the OIP proxy) set it.
        ``biometric`` (schema v2) holds what AI Act Art. 12(3) asks of a remote biometric
        identification system for each use: the period, the reference database, the matched input.
        """
        if type(model) is not Model:
            model = _as_model(model)
        self._check_model(model)
        if (model.digest is None or model.uri is None or model.version == UNVERSIONED) and self.lineage:
            model = self.lineage.attach(model)
        if error is not None:
            error = _error_info(error)
            status = "error"
        if source != "sdk" and source not in SOURCES:
            raise RecordInvalid(f"must be one of {', '.join(SOURCES)}, got {source!r}", field="source")
        if status != "ok" and status != "error":
            raise RecordInvalid(f"must be 'ok' or 'error', got {status!r}", field="status")
        if latency_ms is not None and (type(latency_ms) not in (float, int) or not 0 <= latency_ms < _INF):
            raise RecordInvalid(f"must be a non-negative number, got {latency_ms!r}", field="latency_ms")
        if id is not None and not (type(id) is str and is_uuid(id)):
            raise RecordInvalid(f"must be a lowercase hyphenated UUID, got {id!r}", field="id")
        if ts is not None:
            _check_ts(ts)
        if not (subject is actor is request_id is trace_id is span_id is parent_id is session_id is None):
            _check_strings(
                subject=subject, actor=actor, request_id=request_id, trace_id=trace_id,
                span_id=span_id, parent_id=parent_id, session_id=session_id,
            )  # fmt: skip
        if not shallow(
            input, output, parameters, attributes
        ):  # nested: refused now, not by the shipper later
            check_storable(
                {"input": input, "output": output, "parameters": parameters, "attributes": attributes}
            )
        entry = InferenceRecord(
            id=id or uuid7(),
            system=self.system,
            ts=ts or _now(_UTC),
            model=model,
            input=input,
            output=output,
            latency_ms=latency_ms,
            parameters=parameters if type(parameters) is dict else _mapping("parameters", parameters),
            status=status,
            error=error,
            request_id=request_id,
            trace_id=trace_id,
            span_id=span_id,
            parent_id=parent_id,
            session_id=session_id,
            subject=subject,
            actor=actor,
            attributes=attributes if type(attributes) is dict else _mapping("attributes", attributes),
            source=source,
        )
        if biometric is not None:  # checked now (a use that ends before it starts), not by the shipper
            entry = stamped(msgspec.structs.replace(entry, biometric=checked_biometric(biometric)))
        self._write(entry)
        return entry.id

    def _check_model(self, model: Model) -> None:
        """A Model built in code is not validated: checked here, once per distinct model (cached)."""
        try:
            if model in self._valid_models:
                return
        except TypeError:  # a field holds something unhashable (a list): not a model the store keeps
            pass
        _checked_model(model)
        if len(self._valid_models) >= _MAX_CHECKED_MODELS:
            self._valid_models.clear()
        self._valid_models.add(model)

    def feedback(
        self,
        inference_id: str,
        *,
        label: Any = None,
        outcome: Any = None,
        override: Any = None,
        comment: str | None = None,
        actor: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        ts: dt.datetime | None = None,
        verification: Verification | None = None,
    ) -> str:
        """Record ground truth, an outcome, or a human review/override of one inference.

        ``verification`` (``"confirmed"`` or ``"rejected"``, schema v2) says a natural person, the
        ``actor``, verified the result (AI Act Art. 14(5): two distinct persons for a biometric match).
        """
        if type(inference_id) is not str or not is_uuid(inference_id):
            raise RecordInvalid(f"must be an inference id, got {inference_id!r}", field="inference_id")
        check_storable({"label": label, "outcome": outcome, "override": override, "attributes": attributes})
        _check_strings(comment=comment, actor=actor)
        if ts is not None:
            _check_ts(ts)
        entry = FeedbackEntry(
            id=uuid7(),
            system=self.system,
            ts=ts or _now(_UTC),
            inference_id=inference_id,
            label=label,
            outcome=outcome,
            override=override,
            comment=comment,
            actor=actor,
            attributes=_mapping("attributes", attributes),
        )
        if verification is not None:
            if verification not in VERIFICATIONS:
                raise RecordInvalid(
                    f"must be one of {', '.join(VERIFICATIONS)}, got {verification!r}", field="verification"
                )
            entry = stamped(msgspec.structs.replace(entry, verification=verification))
        self._write(entry)
        return entry.id

    def period(self, *, purpose: str | None = None, actor: str | None = None) -> PeriodOfUse:
        """A period of use of this system: ``with log.period(purpose=...):`` writes a ``period.started``
        admin entry on entry and ``period.ended`` on exit (also when the block raises)."""
        _check_strings(purpose=purpose, actor=actor)
        return PeriodOfUse(self._write, system=self.system, purpose=purpose, actor=actor)

    def records_without_waiting(self) -> bool:
        """Whether ``record()`` would return now without waiting on anything: durability ``process``
        (no wait for the group commit), no policy (sealing may make a key in the key store, on disk),
        and a spool with room (no wait for the shipper). An event loop may then record inline instead
        of handing the call to a thread, which costs more than the record itself."""
        return not self._machine and self._protect is None and self._frames is None and self._spool.has_room()

    def _write(self, entry: Entry) -> None:
        if self._forked:
            self._restart_after_fork()
        if self._protect is not None:
            given = entry
            try:
                entry = self._protect(entry)
                if self._frames is not None and getattr(entry, "subject", None) is not None:
                    # A data subject's record is sealed under their key before it is spooled, so that
                    # erasing them shreds the spool's copy too; others wait for the shipper (see frames).
                    entry = self._seal(entry)
            except StoreUnavailable as exc:  # the key store: unsealed, the record must not reach the disk
                if self.fail_closed:
                    raise NotDurable(f"inference {entry.id} was not logged: {exc}") from exc
                self._drop(entry.id, str(exc))
                return
            except UnicodeEncodeError as exc:  # sealing encodes the payload first: a lone surrogate
                raise _unencodable(given, self._encoder, exc) from None
        try:
            payload = self._encoder.encode(entry)
        except (TypeError, OverflowError, ValueError) as exc:  # ValueError: a lone surrogate in a str
            raise _unencodable(entry, self._encoder, exc) from None
        if self._frames is not None:  # every frame, sealed fields or not: attributes, errors, ...
            payload = self._frames.seal(payload)
        try:
            ticket = self._spool.append(payload)
            if self._machine:
                self._spool.wait_synced(ticket, self._sync_timeout)
        except NotDurable as exc:
            if self.fail_closed:
                raise
            self._drop(entry.id, str(exc))
            return
        self.counters.spooled += 1

    def _drop(self, entry_id: str, reason: str) -> None:
        """Count a record that was not made durable, and say so: one line, not one per record.

        The first drop is logged at once; while drops go on, one line every ``_DROP_LOG_EVERY``
        seconds gives the count since the last line (``counters.dropped`` has the total).
        """
        self.counters.dropped += 1
        self._drops_unreported += 1
        now = time.monotonic()
        if now < self._next_drop_log:
            return
        log.error(
            "%d inference(s) NOT logged durably (fail_closed=False; total %d), the last %s: %s",
            self._drops_unreported, self.counters.dropped, entry_id, reason,
        )  # fmt: skip
        self._drops_unreported = 0
        self._next_drop_log = now + _DROP_LOG_EVERY

    # -- capture helpers ----------------------------------------------------------------------

    def inference(self, model: Model, **fixed: Any) -> Callable[[F], F]:
        """Decorator: every call of the function (sync or async), ok or raising, is one record."""
        return decorate(self, model, fixed)

    def trace(self, model: Model, **fields: Any) -> Call:
        """Context manager (``with`` or ``async with``) for code that is not one function.

        ``with log.trace(model=m, input=x) as call:`` then set ``call.output``; the block's outcome (a
        raised exception included) becomes one record when it ends, with ``call.id`` known up front.
        """
        return Call(self, model, fields)

    def register_model(
        self,
        name: str,
        version: str,
        *,
        digest: str,
        uri: str | None = None,
        card: str | os.PathLike[str] | None = None,
        actor: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> Registration:
        """Register a model version in the log (a ``model.registered`` admin entry); see docs/capture.md.

        Records of ``name``/``version`` made without a digest or URI get them from this registration.
        ``card``: a model card file; the log keeps its SHA-256, size and name (and its text when small).
        ``schema``: its inputs and outputs (see :meth:`record_schema`), kept as a ``model.schema`` entry.
        Through a server this needs an admin key. ModelConflict if the version has another digest.
        """
        card_info = card_of(Path(card).read_bytes(), Path(card).name) if card is not None else None
        if schema is not None:
            check_schema(schema)  # before anything is written
        if self.store is not None:
            registration = register_model(
                self.store, name, version, digest=digest, uri=uri, card=card_info, actor=actor or os_user()
            )
            if schema is not None:
                record_schema(self.store, name, version, schema, source="user", actor=actor or os_user())
        elif self.reader is not None:
            registration = self.reader.register_model(
                name, version, digest=digest, uri=uri, card=card_info, schema=schema
            )
        else:
            raise UsageError("this Log has neither a store nor a server to register models in")
        if self.lineage is not None:
            self.lineage.remember(registration)
        return registration

    def record_schema(
        self,
        name: str,
        version: str,
        schema: Mapping[str, Any],
        *,
        source: SchemaSource = "user",
        actor: str | None = None,
    ) -> ModelSchema:
        """Record the input/output schema of a model version (a ``model.schema`` admin entry).

        ``schema`` is ``{"inputs": [{"name", "datatype"?, "shape"?}], "outputs": [...]}``
        (:func:`inferlog.model_schemas.sklearn_schema` makes one from a fitted estimator). The same
        schema again writes nothing; another one for the version is recorded and flagged ``changed``.
        Through a server this needs an admin key.
        """
        if self.store is not None:
            return record_schema(self.store, name, version, schema, source=source, actor=actor or os_user())
        if self.reader is not None:
            return self.reader.record_schema(name, version, schema, source)
        raise UsageError("this Log has neither a store nor a server to record schemas in")

    def capture_schema(self, model: Model, schema: Mapping[str, Any] | None, source: SchemaSource) -> None:
        """What a capture path (the proxy, ``wrap``) calls: record ``schema`` once per process per
        (name, version, schema), never raising. An ``unversioned`` model has no schema to keep."""
        if (
            schema is None
            or model.version in (UNVERSIONED, "")
            or (self.store is None and self.reader is None)
        ):
            return
        key = (model.name, model.version, repr(schema))
        with self._schema_lock:
            if key in self._schemas_seen:
                return
            self._schemas_seen.add(key)
        try:
            self.record_schema(
                model.name, model.version, schema, source=source, actor=f"{source}:{os_user()}"
            )
        except Exception as exc:  # noqa: BLE001 - a schema is worth a warning, never an inference
            log.warning("inferlog: the schema of %s %s was not recorded: %s", model.name, model.version, exc)

    def model_schemas(self) -> list[ModelSchema]:
        """The latest schema of each model version, each flagged ``changed`` if its source changed it."""
        if self.store is not None:
            return model_schemas(self.store)
        if self.reader is not None:
            return self.reader.model_schemas()
        raise UsageError("this Log has neither a store nor a server to read schemas from")

    def registered_models(self) -> list[Registration]:
        """Every registered model version (the latest registration of each)."""
        if self.store is not None:
            return registered_models(self.store)
        if self.reader is not None:
            return self.reader.models()
        raise UsageError("this Log has neither a store nor a server to read models from")

    # -- reading ------------------------------------------------------------------------------

    def _reader(self) -> Store:
        if self.store is None:
            if self.reader is not None:
                raise UsageError(
                    "reads through a server state a purpose and are audited: use log.reader.get(id, purpose=...) "
                    "or log.reader.query(purpose=..., **filters)"
                )
            raise UsageError("this Log has no store to read from")
        return self.store

    def get(self, entry_id: str, *, purpose: str = DEFAULT_READ_PURPOSE) -> StoredEntry | None:
        """The entry with this id; waits briefly for it if it is still on its way from the spool.

        The read is on record: an access entry with ``purpose`` and the OS user (see ``query``).
        """
        found = self._reader().get(entry_id)
        if found is None and self.pending():
            self.flush(timeout=5.0)
            found = self._reader().get(entry_id)
        if found is None:
            return None
        self._audit("get", purpose, [found.entry.system], {"id": entry_id}, [found])
        return self._reveal([found])[0]

    def _audit(
        self,
        action: str,
        purpose: str,
        scope: list[str] | None,
        query: dict[str, Any],
        read: list[StoredEntry],
    ) -> None:
        """File a read of payloads as access entries (one per system); the read fails if they cannot be."""
        if not purpose:
            raise UsageError("a read needs a purpose: say why you read these entries")
        record_read(
            Ingestor(self._reader()), actor=f"sdk:{os_user()}", action=action, purpose=purpose, scope=scope,
            query=query, counts=counts_by_system(read),
        )  # fmt: skip

    def _reveal(self, entries: list[StoredEntry]) -> list[StoredEntry]:
        """Sealed entries opened, when this process holds the key store (see the policy file)."""
        opener = self.protection.opener if self.protection is not None else None
        return reveal(self._reader(), opener, entries) if opener is not None else entries

    def query(
        self, cursor: int = 0, limit: int = 100, *, purpose: str = DEFAULT_READ_PURPOSE, **filters: Any
    ) -> Page:
        """A page of entries matching the filters (see :class:`inferlog.Query`), in seq order.

        Reads what this Log wrote before the call (it flushes briefly first). The read is on record:
        one access entry per system read, with ``purpose`` and the OS user as ``sdk:<user>``.
        """
        if self.pending():
            self.flush(timeout=5.0)
        query = Query(after=cursor, limit=limit, **filters)
        page = self._reader().query(query)
        scope = [query.system] if query.system is not None else None
        self._audit("query", purpose, scope, query.describe(), list(page.entries))
        return Page(self._reveal(page.entries), page.next_cursor)

    def stats(self, **filters: Any) -> dict[str, Any]:
        """Counts, models, latency percentiles of the log, plus this Log's delivery counters."""
        result = self._reader().stats(Query(**filters)) if self.store is not None else {}
        result["sdk"] = self.counters.as_dict() | {"pending": self.pending()}
        return result

    # -- integrity ----------------------------------------------------------------------------

    def checkpoint(self) -> StoredCheckpoint | None:
        """Deliver what is pending, then sign a checkpoint of the log now (None without a signer)."""
        if self.checkpointer is None:
            return None
        self.flush()
        kept = self.checkpointer.store.checkpoints()
        if kept and kept[-1].size == self.checkpointer.store.tree().size:
            return kept[-1]
        return self.checkpointer.checkpoint()

    def proof(self, entry_id: str) -> InclusionProof:
        """The inclusion proof of an entry under the newest signed checkpoint that covers it.

        Check it with :meth:`InclusionProof.verify` and the log's verifier key.
        """
        store = self._reader()
        self.flush()
        stored = store.get(entry_id)
        if stored is None:
            raise NotFound(f"no entry with id {entry_id}")
        covering = [c for c in store.checkpoints() if c.size >= stored.seq]
        if not covering:
            raise NotFound(f"no checkpoint covers seq {stored.seq} yet (call log.checkpoint())")
        checkpoint = covering[-1]
        return InclusionProof(
            id=entry_id,
            seq=stored.seq,
            leaf=stored.leaf,
            tree_size=checkpoint.size,
            hashes=inclusion(store, stored.seq, checkpoint.size),
            checkpoint=checkpoint.note,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def pending(self) -> int:
        """Records spooled by this Log and not yet delivered."""
        return self._spool.appended - self._shipper.delivered

    def flush(self, timeout: float = 30.0) -> bool:
        """Deliver everything recorded so far; True if it all reached the store within ``timeout``."""
        if self._forked:
            self._restart_after_fork()
        return self._shipper.flush(self._spool.appended, timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Flush, stop the background threads, release the spool. True if nothing was left behind.

        What could not be delivered stays in the spool and is replayed by the next ``open``.
        """
        with self._lifecycle:
            if self._closed:
                return True
            self._closed = True
        if self._drops_unreported:
            log.error("%d more inference(s) NOT logged before close", self._drops_unreported)
        delivered = self._shipper.flush(self._spool.appended, timeout)
        self._shipper.stop()
        if delivered and self.checkpointer is not None:
            self.checkpoint()
        self._spool.close(delivered=self._shipper.delivered >= self._spool.appended)
        self.transport.close()
        if self.reader is not None:
            self.reader.close()
        if self.store is not None and self.store is not getattr(self.transport, "store", None):
            self.store.close()
        return delivered

    def __enter__(self) -> Log:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _registry(store: Store | None, reader: HttpReader | None) -> ModelRegistry | None:
    """The registry a Log attaches lineage from: its store's registrations, or its server's."""
    if store is not None:
        return ModelRegistry(StoreRegistrations(store))
    if reader is not None:
        return ModelRegistry(reader.models)
    return None


def _unchanged(entry: Entry) -> Entry:
    return entry


_REF_FIELDS = ("subject", "request_id", "trace_id", "span_id", "parent_id", "session_id")


def _check_strings(**fields: Any) -> None:
    """Strings, and the indexed ones within REF_MAX_LENGTH: refused here, not dead-lettered later."""
    for name, value in fields.items():
        if value is not None and type(value) is not str:
            raise RecordInvalid(f"must be a string, got {type(value).__name__}", field=name)
        if value is not None and name in _REF_FIELDS and len(value) > REF_MAX_LENGTH:
            raise RecordInvalid(f"must be at most {REF_MAX_LENGTH} characters, got {len(value)}", field=name)
        if value is not None and not value.isascii() and not encodable(value):  # before the policy hashes it
            raise RecordInvalid(LONE_SURROGATE, field=name)


def _check_ts(ts: object) -> None:
    """A caller's own time: it must say its timezone (the log keeps UTC and cannot guess)."""
    if not isinstance(ts, dt.datetime) or ts.tzinfo is None:
        raise RecordInvalid("must be a timezone-aware datetime", field="ts")


def _error_info(error: Any) -> ErrorInfo:
    """An exception as the record keeps it; an ErrorInfo checked now, not dead-lettered later."""
    if isinstance(error, BaseException):
        try:
            message = str(error)
        except Exception as exc:  # noqa: BLE001 - a broken __str__ must not hide the inference
            message = f"<str() failed: {type(exc).__name__}>"
        return ErrorInfo(type(error).__name__, message)
    if type(error) is not ErrorInfo or type(error.type) is not str or type(error.message) is not str:
        raise RecordInvalid("must be an exception or an ErrorInfo(type: str, message: str)", field="error")
    return error


_model_decoder = msgspec.json.Decoder(Model)
_MAX_CHECKED_MODELS = 1024


def _mapping(field: str, value: Any) -> dict[str, Any]:
    """``parameters`` or ``attributes`` as a dict; anything but a mapping is refused naming the field."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordInvalid(f"must be a mapping (a dict), got {type(value).__name__}", field=field)
    return dict(value)


def _checked_model(model: Model) -> Model:
    """The model, if the store can keep it (name 1-256 characters, strings where strings go)."""
    try:
        _model_decoder.decode(msgspec.json.encode(model))
    except msgspec.ValidationError as exc:
        raise RecordInvalid(str(exc).replace("`$.", "`model."), field="model") from None
    except (TypeError, ValueError) as exc:  # not encodable at all (a lone surrogate, an object)
        raise RecordInvalid(str(exc), field="model") from None
    return model


def _as_model(value: Any) -> Model:
    if isinstance(value, Mapping):
        try:
            return msgspec.convert(value, Model)
        except msgspec.ValidationError as exc:
            raise RecordInvalid(str(exc), field="model") from None
    if isinstance(value, tuple) and len(value) == 2:
        return Model(str(value[0]), str(value[1]))
    raise RecordInvalid(
        f"must be an inferlog.Model(name, version), got {type(value).__name__}", field="model"
    )


def _unencodable(entry: Entry, encoder: msgspec.msgpack.Encoder, exc: Exception) -> RecordInvalid:
    """Name the field that could not be encoded (only on the error path, so it may be slow)."""
    for name in entry.__struct_fields__:
        try:
            encoder.encode(getattr(entry, name))
        except UnicodeEncodeError:  # before ValueError, of which it is one
            return RecordInvalid(LONE_SURROGATE, field=name)
        except (TypeError, OverflowError, ValueError) as inner:
            return RecordInvalid(f"{inner}; convert it to JSON-compatible values", field=name)
    return RecordInvalid(LONE_SURROGATE if isinstance(exc, UnicodeEncodeError) else str(exc))
