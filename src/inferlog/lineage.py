"""The model registry kept in the log: which digest and lineage URI a (model, version) stands for.

:func:`register_model` puts a registration on record as a ``model.registered`` admin entry (system
``*``); :func:`registered_models` reads them back (the latest registration of a (name, version)
wins). A version registered again with *another* digest is refused with :class:`ModelConflict`: a
version names one artifact for good, so a new artifact needs a new version. The CLI
(``inferlog models``), the server (``/v1/models``) and the SDK (``Log.register_model``) all call these.

Capture paths that cannot know the artifact (the OIP proxy, the KServe/Seldon sinks, ``wrap``
without a digest) attach ``digest`` and ``uri`` from a :class:`ModelRegistry`: an in-memory copy of
the registrations, refreshed when a registration goes through it, every ``refresh_interval`` seconds,
and when a (name, version) it does not know appears (after ``unknown_interval`` seconds, then less and
less often while it stays unknown). Every load runs in a background thread: capture never queries
the store per record, and never waits for it. Attaching fills only what the record lacks: a digest
the producer sent is kept.

A model card may be large and may change outside the log: the entry keeps its SHA-256, its size and
the reference given (a file name or URL), and the text itself when it is at most
:data:`CARD_INLINE_BYTES` of UTF-8, so an auditor can check the card they are shown is the one
registered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from inferlog.errors import ModelConflict, RecordInvalid, StoreError
from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid8
from inferlog.record.model import AdminEntry, Model
from inferlog.record.validate import check_model, checked
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.forksafe import reset_in_child
from inferlog.store.paging import iter_entries
from inferlog.store.protocols import EntryReader, EntryStore

log = logging.getLogger("inferlog")

MODEL_REGISTERED = "model.registered"
UNVERSIONED = "unversioned"  # what wrap() records for an estimator nobody gave a version
CARD_INLINE_BYTES = 16 * 1024
URI_MAX_LENGTH = 4096
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
_LOG_SYSTEM = "*"


@dataclass(frozen=True, slots=True)
class Registration:
    """One model version as registered: its artifact digest, lineage URI and card, who and when."""

    name: str
    version: str
    digest: str
    uri: str | None = None
    card: Mapping[str, Any] | None = None  # {"sha256", "bytes", "ref", "text"?}
    actor: str | None = None
    ts: dt.datetime | None = None
    entry_id: str | None = None

    def details(self) -> dict[str, Any]:
        """The admin entry's ``details``."""
        out: dict[str, Any] = {"name": self.name, "version": self.version, "digest": self.digest}
        if self.uri is not None:
            out["uri"] = self.uri
        if self.card is not None:
            out["card"] = dict(self.card)
        return out

    def public_view(self) -> dict[str, Any]:
        """What the CLI and ``GET /v1/models`` show."""
        return {
            **self.details(),
            "registered_by": self.actor,
            "registered_at": self.ts.isoformat() if self.ts else None,
            "entry_id": self.entry_id,
        }


def card_of(data: bytes, ref: str) -> dict[str, Any]:
    """What the log keeps of a model card: SHA-256, size, reference, and the text when small."""
    card: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "ref": ref}
    if len(data) <= CARD_INLINE_BYTES:
        with contextlib.suppress(UnicodeDecodeError):  # a binary card: its hash and reference only
            card["text"] = data.decode("utf-8")
    return card


def check_digest(digest: str) -> str:
    """``digest`` if it is ``sha256:`` and 64 lowercase hex digits; RecordInvalid otherwise."""
    if not DIGEST_PATTERN.match(digest):
        raise RecordInvalid(f"must be 'sha256:' and 64 lowercase hex digits, got {digest!r}", field="digest")
    return digest


def _check_model(name: str, version: str, uri: str | None) -> None:
    """The bounds a record's model has (a registration names what records will carry)."""
    check_model(name, version)
    if uri is not None and not 0 < len(uri) <= URI_MAX_LENGTH:
        raise RecordInvalid(f"must be 1 to {URI_MAX_LENGTH} characters", field="uri")


def registered_models(store: EntryReader) -> list[Registration]:
    """Every registered (name, version), its latest registration each, in order of first registration.

    Read through the store's one shared :class:`StoreRegistrations`: each call reads only what was
    appended since the last, so a server answering ``GET /v1/models`` does not re-read the admin log.
    """
    return registrations_of(store)()


_READERS: weakref.WeakKeyDictionary[Any, StoreRegistrations] = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def registrations_of(store: EntryReader) -> StoreRegistrations:
    """The one incremental registrations reader of this store object (made on first use, dropped with it)."""
    with _READERS_LOCK:
        try:
            reader = _READERS.get(store)
        except TypeError:  # a store that cannot be weakly referenced: a reader of its own each time
            return StoreRegistrations(store)
        if reader is None:
            # A proxy, not the store: the reader is the dictionary's value, and a value that held
            # its own key would keep every store ever opened alive.
            reader = _READERS[store] = StoreRegistrations(cast(EntryReader, weakref.proxy(store)))
        return reader


class StoreRegistrations:
    """Reads a store's registrations incrementally: each call reads only the admin entries appended since
    the last one (the log is append-only), so a capture path's periodic reload stays cheap however many
    admin entries (erasures, key changes) the log holds."""

    def __init__(self, store: EntryReader) -> None:
        self.store = store
        self.after = 0  # the last seq read
        self.found: dict[tuple[str, str], Registration] = {}
        self.count: dict[tuple[str, str], int] = {}  # registrations read per (name, version)
        self._lock = threading.Lock()
        _track_reader(self)

    def _after_fork(self) -> None:
        """In a forked child: a parent thread may have held the lock mid-read; that thread is gone."""
        self._lock = threading.Lock()

    def __call__(self) -> list[Registration]:
        with self._lock:
            query = Query(kind="admin", system=_LOG_SYSTEM, after=self.after, limit=MAX_PAGE)
            for stored in iter_entries(self.store, query):
                self.after = max(self.after, stored.seq)
                entry = stored.entry
                if isinstance(entry, AdminEntry) and entry.action == MODEL_REGISTERED:
                    registration = _from_entry(entry)
                    if registration is not None:
                        key = (registration.name, registration.version)
                        self.found[key] = registration
                        self.count[key] = self.count.get(key, 0) + 1
            return list(self.found.values())


_track_reader = reset_in_child(StoreRegistrations._after_fork)


def _from_entry(entry: AdminEntry) -> Registration | None:
    d = entry.details
    name, version, digest = d.get("name"), d.get("version"), d.get("digest")
    if not (isinstance(name, str) and isinstance(version, str) and isinstance(digest, str)):
        return None  # not one this module wrote: ignored rather than trusted
    uri = d.get("uri")
    card = d.get("card")
    return Registration(
        name,
        version,
        digest,
        uri if isinstance(uri, str) else None,
        card if isinstance(card, dict) else None,
        entry.actor,
        entry.ts,
        entry.id,
    )


def register_model(
    store: EntryStore,
    name: str,
    version: str,
    *,
    digest: str,
    uri: str | None = None,
    card: Mapping[str, Any] | None = None,
    actor: str | None,
) -> Registration:
    """Put a model version on record (a ``model.registered`` admin entry by ``actor``).

    Registering a version again with the same digest records the new URI/card (the latest wins);
    with another digest it is refused (:class:`ModelConflict`): register the artifact as a new version.
    ``card`` is what :func:`card_of` makes of the card file.
    """
    check_digest(digest)
    if not version or version == UNVERSIONED:
        raise RecordInvalid(f"a registered model needs a real version, got {version!r}", field="version")
    _check_model(name, version, uri)
    reader = registrations_of(store)
    key = (name, version)
    # The store's id uniqueness is the sequencer: the n-th registration of (name, version) has an id
    # made of (name, version, n), so of two writers racing (threads or processes, either backend)
    # exactly one is written; the other hears "conflict", reads what won, and checks again.
    for _ in range(_REGISTER_ATTEMPTS):
        reader()  # incremental: only the admin entries appended since this store's last read
        with reader._lock:
            known = reader.found.get(key)
            number = reader.count.get(key, 0)
        if known is not None and known.digest != digest:
            raise ModelConflict(
                f"{name} {version} is registered with digest {known.digest}, not {digest}: "
                "a version names one artifact; register this one as a new version"
            )
        now = dt.datetime.now(dt.UTC)
        entry_id = uuid8(MODEL_REGISTERED, name, version, str(number))
        registration = Registration(name, version, digest, uri, card, actor, now, entry_id)
        entry = AdminEntry(
            id=entry_id,
            system=_LOG_SYSTEM,
            ts=now,
            actor=actor,
            action=MODEL_REGISTERED,
            details=registration.details(),
        )
        (result,) = store.append(Pipeline().prepare_all([checked(entry)]))
        if result.status == "new":
            return registration
    raise StoreError(f"could not register {name} {version}: other registrations kept winning the race")


_REGISTER_ATTEMPTS = 100


def unregistered(
    models: Iterable[Mapping[str, Any]], registrations: Iterable[Registration]
) -> list[dict[str, Any]]:
    """The ``stats`` model rows whose (model, version) is not registered (``unversioned`` ones included)."""
    known = {(r.name, r.version) for r in registrations}
    return [dict(row) for row in models if (row.get("model"), row.get("version")) not in known]


@dataclass(eq=False)  # eq=False: hashable by identity, so a fork tracker can hold it weakly
class ModelRegistry:
    """An in-memory copy of the registrations that capture paths attach lineage from.

    ``load`` reads all registrations (:func:`registered_models` on a store, or a server's
    ``GET /v1/models``). It runs on the first lookup, when the copy is older than ``refresh_interval``,
    and when a (name, version) it does not know appears and the copy is older than the unknown wait:
    an unregistered model in a busy stream costs a dictionary lookup, not a query per record.

    The unknown wait starts at ``unknown_interval`` and doubles with each reload an unknown model
    causes, up to ``refresh_interval``; it starts over when a reload brings a registration the copy did
    not have. So a model nobody registers costs a few reloads, then one per ``refresh_interval``, not
    one a second forever.

    Every load runs in a named background thread (``background=True``, the default), the first one
    too, so ``record()`` never waits for the store or the server, even when it is slow or down: the
    caller gets the copy it has meanwhile (empty until the first load ends; :meth:`wait_loaded` waits
    for it). A forked child starts with fresh locks and its own reloader.
    """

    load: Callable[[], Iterable[Registration]]
    refresh_interval: float = 30.0
    unknown_interval: float = 1.0  # an unknown (name, version) reloads a copy older than this
    clock: Callable[[], float] = time.monotonic
    _known: dict[tuple[str, str], Registration] = field(default_factory=dict, init=False)
    _by_digest: dict[str, Registration] = field(default_factory=dict, init=False)
    _loaded_at: float | None = field(default=None, init=False)
    _failed: bool = field(default=False, init=False)
    _unknown_wait: float | None = field(default=None, init=False)  # None: unknown_interval
    _remembered: dict[tuple[str, str], Registration] = field(default_factory=dict, init=False)
    _loaded: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    background: bool = True
    _reloader: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        _track_registry(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._reloader = None  # the parent's thread does not exist here
        loaded, self._loaded = self._loaded.is_set(), threading.Event()
        if loaded:
            self._loaded.set()

    def refresh(self) -> None:
        """Read the registrations again now (on the caller's thread)."""
        registrations = list(self.load())
        with self._lock:
            known = {(r.name, r.version): r for r in registrations}
            # A registration remembered while this load read may be newer than what it read: kept.
            for key, mine in list(self._remembered.items()):
                loaded = known.get(key)
                if loaded is not None and loaded.entry_id == mine.entry_id:
                    del self._remembered[key]  # the load has caught up with it
                elif loaded is None or _newer(mine, loaded):
                    known[key] = mine
            if not known.keys() <= self._known.keys():
                self._unknown_wait = None  # something new: an unknown model may be known now
            self._known = known
            self._by_digest = {r.digest: r for r in known.values()}
            self._loaded_at = self.clock()
            self._failed = False
        self._loaded.set()

    def remember(self, registration: Registration) -> None:
        """A registration made through this process: known at once, without a reload."""
        key = (registration.name, registration.version)
        with self._lock:
            self._remembered[key] = registration
            self._known = {**self._known, key: registration}
            self._by_digest = {**self._by_digest, registration.digest: registration}

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Start the first load if none has run, and wait up to ``timeout`` seconds for one to end.

        True once a load has ended (a failed one too: the copy then stays as it was). For a program
        that wants lineage on its very first records: call it once at start, never per record.
        """
        if self._loaded_at is None:
            self._refresh_behind()
        return self._loaded.wait(timeout)

    def lookup(self, name: str, version: str) -> Registration | None:
        """The registration of (name, version), reloading first if the copy is due for it."""
        return self._find(lambda: self._known.get((name, version)))

    def lookup_digest(self, digest: str) -> Registration | None:
        """The latest registration of an artifact digest (what ``wrap`` knows of an estimator)."""
        return self._find(lambda: self._by_digest.get(digest))

    def _find(self, get: Callable[[], Registration | None]) -> Registration | None:
        found = get()
        loaded = self._loaded_at
        if loaded is None:  # the first lookup: the copy is empty; load it (in the background)
            self._refresh_behind()
            return get()
        quick = found is None and not self._failed  # after a failed reload, wait the full interval
        unknown_wait = self.unknown_interval if self._unknown_wait is None else self._unknown_wait
        due = unknown_wait if quick else self.refresh_interval
        if self.clock() - loaded >= due:
            # For an unknown model the next reload waits twice as long (up to the full interval).
            backoff = (
                min(2 * unknown_wait, max(self.refresh_interval, self.unknown_interval)) if quick else None
            )
            self._refresh_behind(backoff)
            found = get()
        return found

    def _refresh_behind(self, backoff: float | None = None) -> None:
        """Reload without holding up the caller: in one background thread at a time.

        ``backoff``: the unknown wait after this reload, set when the reload starts (a reload that
        brings a new registration sets it back to ``unknown_interval``).
        """
        if not self.background:
            if backoff is not None:
                self._unknown_wait = backoff
            self._quiet_refresh()
            return
        with self._lock:
            if self._reloader is not None and self._reloader.is_alive():
                return
            if backoff is not None:
                self._unknown_wait = backoff
            self._reloader = threading.Thread(
                target=self._quiet_refresh, name="inferlog-lineage", daemon=True
            )
            self._reloader.start()

    def _quiet_refresh(self) -> None:
        """A reload on the capture path: a failure keeps the old copy (logged), never fails a record."""
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - whatever the registry's source does, a record goes on
            with self._lock:
                self._loaded_at = self.clock()  # not retried per record: after refresh_interval again
                self._failed = True
            self._loaded.set()
            log.warning("inferlog: could not read the model registry (lineage not attached): %s", exc)

    def attach(self, model: Model) -> Model:
        """``model`` with ``digest`` and ``uri`` filled from its registration where it lacks them.

        An ``unversioned`` model with a digest (``wrap`` of an estimator) takes the name, version
        and URI its digest is registered under.
        """
        if model.version == UNVERSIONED and model.digest is not None:
            by_digest = self.lookup_digest(model.digest)
            if by_digest is not None:
                uri = model.uri if model.uri is not None else by_digest.uri
                return Model(by_digest.name, by_digest.version, model.digest, uri, model.provider)
            return model
        if model.digest is not None and model.uri is not None:
            return model
        found = self.lookup(model.name, model.version)
        if found is None:
            return model
        digest = model.digest if model.digest is not None else found.digest
        uri = model.uri if model.uri is not None else found.uri
        if digest == model.digest and uri == model.uri:
            return model
        return Model(model.name, model.version, digest, uri, model.provider)


def _newer(mine: Registration, loaded: Registration) -> bool:
    return mine.ts is not None and (loaded.ts is None or mine.ts > loaded.ts)


_track_registry = reset_in_child(ModelRegistry._after_fork)
