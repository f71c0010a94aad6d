"""The monitoring engine: folds the log into rollups, and answers metrics, series and drift from them.

Rollups are kept per (system, model, version) and bucket at three widths (minute, hour, UTC day),
in the store's own database (:class:`~inferlog.store.protocols.RollupStore`) with the seq of the last
entry folded. :meth:`Monitor.catch_up` folds only the entries after that cursor; a query merges the
fewest rollups that tile its window (a month is about thirty day rows), never the entries.

Purges and erasures change the past. When the fold meets their admin entry (``subject.erased``,
``retention.applied``), the minute buckets that held a purged payload are folded again from the
log, and their hours and days merged again from those minutes: afterwards the rollups are what a
rebuild from scratch (:meth:`Monitor.rebuild`) would give.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from inferlog.errors import BadParameter, Conflict, NotFound, UsageError
from inferlog.keystore.reveal import reveal, reveal_entries
from inferlog.monitor import drift as drift_math
from inferlog.monitor import truth, windows
from inferlog.monitor.fold import Folder, Gathered, Masker
from inferlog.monitor.policy import MonitoringPolicy
from inferlog.monitor.reference import Reference, ReferenceStore
from inferlog.monitor.sketch import ALL, COUNTS, BucketState, merged
from inferlog.monitor.source import FEATURE_METRICS, METRIC_NAMES, Scope
from inferlog.privacy.policy import Policy
from inferlog.privacy.seal import Keyring, Opener
from inferlog.record.model import AdminEntry, Entry, FeedbackEntry, InferenceRecord, StoredEntry
from inferlog.store.base import MAX_PAGE, FoldRow, Query, Rollup, RollupFilter, RollupKey, RollupState
from inferlog.store.protocols import MonitorStore

PURGE_ACTIONS = ("subject.erased", "retention.applied")
PENDING = "pending-refold:"  # monitor values: purges met by the fold, not yet refolded
KEY_NAME = "key:categories"  # the monitor value holding the key of masked categories
_ATTEMPTS = 5
ScopeKey = tuple[str, str, str]  # system, model, version


@dataclass(frozen=True)
class ScopeSummary:
    """One system/model/version over all time: what ``GET /v1/monitor/systems`` lists."""

    system: str
    model: str
    version: str
    volume: int
    error_rate: float | None
    latency_p50: float | None
    latency_p95: float | None
    first: dt.datetime
    last: dt.datetime  # start of the last day with records

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system, "model": self.model, "version": self.version, "volume": self.volume,
            "error_rate": self.error_rate, "latency_p50": self.latency_p50, "latency_p95": self.latency_p95,
            "first_day": self.first.isoformat(), "last_day": self.last.isoformat(),
        }  # fmt: skip


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift of a scope's window against a reference, and the output distribution's PSI."""

    scope: Scope
    reference: str
    since: dt.datetime
    until: dt.datetime
    volume: int
    features: list[drift_math.FeatureDrift] = field(default_factory=list)
    output_psi: float | None = None

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def feature(self, name: str) -> drift_math.FeatureDrift:
        for found in self.features:
            if found.feature == name:
                return found
        raise NotFound(f"no feature {name!r} in this window or its reference")

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.scope.system, "model": self.scope.model, "version": self.scope.version,
            "reference": self.reference, "since": self.since.isoformat(), "until": self.until.isoformat(),
            "volume": self.volume, "output_psi": self.output_psi, "drifted": self.drifted,
            "features": [f.to_dict() for f in self.features],
        }  # fmt: skip


GroupKey = tuple[str, str, str, int]  # system, model, version, minute: a minute rollup's key, unlevelled


class _Payload(msgspec.Struct, gc=False):
    """The fields of an inference's body the fold reads; the decoder skips the others unparsed.

    Not tracked by the garbage collector (decoded JSON holds no cycles): ten thousand tracked objects
    alive through a batch would set off a full collection of the process's heap about once a batch.
    """

    id: str = ""
    input: Any = None
    output: Any = None
    sealed: Any = None


class _Action(msgspec.Struct):
    action: str = ""


_decode_payload = msgspec.json.Decoder(_Payload).decode
_decode_action = msgspec.json.Decoder(_Action).decode
_decode_entry = msgspec.json.Decoder(Entry).decode


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while one batch folds (at most ``MAX_PAGE`` entries).

    A batch makes tens of thousands of small objects (each minute's feature states, their buffers)
    that live until its rollups are written; each pass of the collector over them and the rest of the
    heap cost about a quarter of the fold. The fold makes no reference cycles, so nothing waits for
    the collector but the next pass, which runs as soon as it is enabled again. It is enabled again
    only by the fold that paused it (so a fold never turns on a collector the application turned off).
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _minute(micros: int) -> int:
    """The minute bucket of a time in microseconds, as :func:`windows.seconds` would floor it."""
    if micros >= 0:
        return micros // 60_000_000 * 60
    whole = -(-micros // 1_000_000)  # int() of a timestamp truncates towards zero
    return windows.floor(whole, 60)


def _group_key(entry: InferenceRecord) -> GroupKey:
    return entry.system, entry.model.name, entry.model.version, windows.floor(windows.seconds(entry.ts), 60)


def _up(key: RollupKey, level: int) -> RollupKey:
    return RollupKey(level, key.system, key.model, key.version, windows.floor(key.bucket, level))


class Monitor:
    """Folds a store's log into rollups and answers metrics from them (a :class:`MetricSource`).

    ``policy`` is the policy file's ``[monitoring]`` table (features, references); ``privacy`` its
    privacy part (fields whose categorical values are masked); ``keyring`` the key store, which opens
    sealed payloads for monitoring (without one, sealed fields are not monitored). ``base_dir``
    resolves reference files.
    """

    def __init__(
        self,
        store: MonitorStore,
        policy: MonitoringPolicy | None = None,
        *,
        privacy: Policy | None = None,
        keyring: Keyring | None = None,
        base_dir: Path | None = None,
        batch: int = 5000,
    ) -> None:
        if not 1 <= batch <= MAX_PAGE:
            raise UsageError(f"batch must be between 1 and {MAX_PAGE}, got {batch}")
        self.store = store
        self.policy = policy or MonitoringPolicy()
        self._opener = Opener(keyring) if keyring is not None else None
        self._folder = Folder(self.policy, Masker(privacy, self._mask_key()))
        self.references = ReferenceStore(store, self._folder, self.policy, base_dir)
        self._batch = batch

    def _mask_key(self) -> bytes:
        """The key of masked categories, kept beside the rollups: every monitor of this log uses it, with
        or without the key store, so their digests agree."""
        key = self.store.monitor_value(KEY_NAME)
        if key is None:
            self.store.put_monitor_value(KEY_NAME, os.urandom(32))
            key = self.store.monitor_value(KEY_NAME)
        assert key is not None  # noqa: S101 - just written
        return key

    # -- folding ------------------------------------------------------------------------------

    def catch_up(self, limit: int | None = None) -> int:
        """Fold the entries logged since the last fold (at most ``limit``); return how many were read."""
        done = 0
        self._pending_refolds()  # left by a monitor that stopped between a fold and its refold
        while limit is None or done < limit:
            size = self._batch if limit is None else min(self._batch, limit - done)
            for attempt in range(_ATTEMPTS):
                state = self.store.rollup_state()
                rows = self.store.fold_scan(after=state.cursor, limit=size)
                if not rows:
                    return done
                try:
                    with _collector_paused():
                        self._fold(state, rows)
                    break
                except Conflict:
                    if attempt == _ATTEMPTS - 1:
                        return done  # another monitor keeps winning: it is folding these entries
            done += len(rows)
            self._pending_refolds()
        return done

    def _pending_refolds(self) -> None:
        """Refold after every purge the fold has met and not yet refolded for (see :meth:`_fold`)."""
        for name in self.store.monitor_values(PENDING):
            raw = self.store.monitor_value(name)
            if raw is not None:
                self._after_purge(msgspec.json.decode(raw, type=AdminEntry))
            self.store.put_monitor_value(name, None)

    def rebuild(self) -> int:
        """Forget every rollup and fold the whole log again; return how many entries were read."""
        self.store.clear_rollups()
        return self.catch_up()

    def _readable(self, entries: Sequence[StoredEntry]) -> list[StoredEntry]:
        return reveal(self.store, self._opener, entries) if self._opener is not None else list(entries)

    def _fold(self, state: RollupState, rows: Sequence[FoldRow]) -> None:
        """Fold a batch: inferences gathered per minute bucket, then each bucket folded column-wise.

        The scope, time, status and latency come from the store's columns; of the body only the
        fields the fold reads are decoded. A sealed inference, a feedback entry and a purge's admin
        entry are parsed in full (sealed ones opened where the key store allows).
        """
        groups: dict[GroupKey, Gathered] = {}
        purges: list[AdminEntry] = []
        feedback: list[tuple[int, FeedbackEntry]] = []
        by_id: dict[str, tuple[int, str | bytes]] = {}  # the batch's inferences with a body
        opened = self._opened(rows)
        folder = self._folder
        decode = _decode_payload
        for seq, kind, system, ts, model, version, status, latency, body in rows:
            if kind != "inference":
                if body is None:
                    continue
                if kind == "feedback":
                    found = _decode_entry(body)
                    assert isinstance(found, FeedbackEntry)  # noqa: S101 - the kind column says so
                    feedback.append((seq, found))
                elif kind == "admin" and _decode_action(body).action in PURGE_ACTIONS:
                    purges.append(msgspec.json.decode(body, type=AdminEntry))
                continue
            key = (system, model or "", version or "", _minute(ts))
            into = groups.get(key)
            if into is None:
                into = groups[key] = Gathered(system)
            if body is None:
                bucket = into.state
                bucket.volume += 1
                if status == "error":
                    bucket.errors += 1
                continue
            payload = decode(body)
            by_id[payload.id] = (seq, body)
            if payload.sealed is not None:
                entry = opened.get(seq) or _decode_entry(body)
                assert isinstance(entry, InferenceRecord)  # noqa: S101 - the kind column says so
                folder.inference(into, entry, True)
                continue
            bucket = into.state
            bucket.volume += 1
            bucket.payloads += 1
            if status == "error":
                bucket.errors += 1
            elif status == "ok" and payload.output is not None:
                into.outputs.append(payload.output)
            if latency is not None:
                into.latencies.append(latency)
            if payload.input is not None:
                into.inputs.append(payload.input)
        for seq, answer in feedback:
            target = self._target(answer.inference_id, by_id, opened)
            if target is None or target[0] > seq:
                continue
            inference = target[1]
            key = _group_key(inference)
            into = groups.get(key)
            if into is None:
                into = groups[key] = Gathered(inference.system)
            folder.feedback(into.state, answer, inference)
        folder.flush_all(list(groups.values()))
        deltas = {RollupKey(60, *key): into.state for key, into in groups.items()}
        # Noted before the fold's write, removed after the refold: a monitor that stops in between
        # leaves the note, and the next fold refolds (a refold twice gives the same rollups).
        for event in purges:
            self.store.put_monitor_value(PENDING + event.id, msgspec.json.encode(event))
        self.store.put_rollups(self._merged_rows(deltas), expect=state, cursor=rows[-1].seq)

    def _opened(self, rows: Sequence[FoldRow]) -> dict[int, Entry]:
        """The batch's sealed inferences, parsed and opened (by seq); none without a key store."""
        if self._opener is None:
            return {}
        sealed = [
            (row.seq, _decode_entry(row.body))
            for row in rows
            if row.kind == "inference"
            and row.body is not None
            and _decode_payload(row.body).sealed is not None
        ]
        if not sealed:
            return {}
        entries = reveal_entries(self.store, self._opener, [entry for _, entry in sealed])
        return {seq: entry for (seq, _), entry in zip(sealed, entries, strict=True)}

    def _target(
        self, entry_id: str, by_id: Mapping[str, tuple[int, str | bytes]], opened: Mapping[int, Entry]
    ) -> tuple[int, InferenceRecord] | None:
        """The inference a feedback entry is about, with its payload (opened), or None."""
        found = by_id.get(entry_id)
        if found is not None:
            seq, body = found
            entry = opened.get(seq) or _decode_entry(body)
            assert isinstance(entry, InferenceRecord)  # noqa: S101 - by_id holds inferences
            return seq, entry
        stored = self._inference(entry_id)
        if stored is None or stored.body is None:
            return None
        assert isinstance(stored.entry, InferenceRecord)  # noqa: S101 - _inference checks
        return stored.seq, stored.entry

    def _inference(self, entry_id: str) -> StoredEntry | None:
        found = self.store.get(entry_id)
        if found is None or not isinstance(found.entry, InferenceRecord):
            return None
        return self._readable([found])[0]

    def _merged_rows(self, deltas: Mapping[RollupKey, BucketState]) -> list[Rollup]:
        """The minute deltas merged into their minute, hour and day rollups."""
        # Minutes are the deltas themselves; an hour is a fresh merge of its minutes, a day of its hours.
        levels: dict[RollupKey, BucketState] = dict(deltas)
        for level, finer in ((3600, 60), (86400, 3600)):
            for key, delta in [(k, v) for k, v in levels.items() if k.level == finer]:
                up = _up(key, level)
                if up not in levels:
                    levels[up] = BucketState()
                levels[up].merge(delta)
        existing = {row.key: row for row in self.store.rollups_at(list(levels))}
        rows = []
        for key, delta in levels.items():
            old = existing.get(key)
            total = BucketState.from_bytes(old.data).merge(delta) if old is not None else delta
            rows.append(Rollup(*key, payloads=total.payloads, data=total.to_bytes()))
        return rows

    # -- purges -------------------------------------------------------------------------------

    def _after_purge(self, event: AdminEntry) -> None:
        details = event.details
        minutes: set[RollupKey] = set()
        if event.action == "subject.erased":
            first, last = details.get("first_seq"), details.get("last_seq")
            if isinstance(first, int) and isinstance(last, int):
                for row in self.store.purged_rows(first, last):
                    minutes.add(
                        RollupKey(
                            60, row.system, row.model, row.version, windows.floor(windows.seconds(row.ts), 60)
                        )
                    )
        else:
            for system in details.get("systems", []):
                if not isinstance(system, dict) or not system.get("cutoff"):
                    continue
                cutoff = windows.seconds(
                    dt.datetime.fromisoformat(str(system["cutoff"]).replace("Z", "+00:00"))
                )
                where = RollupFilter(60, system=str(system["system"]), until=cutoff + 60, with_payloads=True)
                minutes.update(row.key for row in self.store.rollups(where))
        if minutes:
            self.refold(minutes)

    def refold(self, minutes: Iterable[RollupKey]) -> None:
        """Fold these minute buckets again from the log (up to the cursor), then their hours and days."""
        wanted = sorted(set(minutes))
        # Each lost race means another monitor folded new entries; the refold must still happen (the
        # cursor is past the purge), so it tries on (bounded only against a bug).
        for attempt in range(100 * _ATTEMPTS):
            state = self.store.rollup_state()
            try:
                self._refold(state, wanted)
                return
            except Conflict:
                if attempt == 100 * _ATTEMPTS - 1:
                    raise

    def _refold(self, state: RollupState, minutes: Sequence[RollupKey]) -> None:
        fresh: dict[RollupKey, BucketState] = {}
        for key in minutes:
            fresh[key] = self._fold_minute(key, state.cursor)
        for level, finer in ((3600, 60), (86400, 3600)):
            for up in sorted({_up(key, level) for key in list(fresh) if key.level == finer}):
                parts = {
                    row.key: BucketState.from_bytes(row.data)
                    for row in self.store.rollups(
                        RollupFilter(
                            finer, up.system, up.model, up.version, since=up.bucket, until=up.bucket + level
                        )
                    )
                }
                parts.update({k: s for k, s in fresh.items() if k.level == finer and _up(k, level) == up})
                fresh[up] = merged(parts.values())
        rows = [Rollup(*key, payloads=s.payloads, data=s.to_bytes()) for key, s in fresh.items() if s.volume]
        drop = [key for key, s in fresh.items() if not s.volume]
        self.store.put_rollups(rows, expect=state, cursor=state.cursor, drop=drop)

    def _fold_minute(self, key: RollupKey, cursor: int) -> BucketState:
        into = Gathered(key.system)
        since = windows.at(key.bucket)
        query = Query(
            system=key.system, kind="inference", model=key.model, version=key.version or None, since=since,
            until=since + dt.timedelta(seconds=60), limit=MAX_PAGE,
        )  # fmt: skip
        inferences: list[StoredEntry] = []
        while True:
            page = self.store.query(query)
            inferences.extend(
                s for s in page.entries
                if s.seq <= cursor and isinstance(s.entry, InferenceRecord) and s.entry.model.version == key.version
            )  # fmt: skip
            if page.next_cursor is None:
                break
            query = dataclasses.replace(query, after=page.next_cursor)
        for stored in self._readable(inferences):
            entry = stored.entry
            assert isinstance(entry, InferenceRecord)  # noqa: S101 - filtered above
            self._folder.inference(into, entry, stored.body is not None)
            if stored.body is None:
                continue
            feedback = self.store.query(
                Query(kind="feedback", inference_id=stored.id, limit=MAX_PAGE)
            ).entries
            for answer in self._readable(
                [f for f in feedback if stored.seq < f.seq <= cursor and f.body is not None]
            ):
                assert isinstance(answer.entry, FeedbackEntry)  # noqa: S101 - queried by kind
                self._folder.feedback(into.state, answer.entry, entry)
        return self._folder.flush(into)

    # -- reading ------------------------------------------------------------------------------

    def window(
        self, scope: Scope, since: dt.datetime, until: dt.datetime, parts: frozenset[str] = ALL
    ) -> BucketState:
        """The merged state of a scope over ``[since, until)`` (whole minutes, see :func:`windows.cover`).

        ``parts`` says which sketches to read beside the counts (all by default; see ``BucketState.from_bytes``).
        """
        pieces = windows.cover(windows.seconds(since), windows.seconds(until))
        states: list[BucketState] = []
        for level, first, end in windows.runs(pieces):
            for row in self.store.rollups(
                RollupFilter(level, scope.system, scope.model, scope.version, first, end)
            ):
                states.append(BucketState.from_bytes(row.data, parts))
        return merged(states)

    def metric(
        self, name: str, scope: Scope, since: dt.datetime, until: dt.datetime, *, reference: str | None = None
    ) -> float | None:
        """One metric (a :data:`METRIC_NAMES` name or ``<drift metric>:<feature>``); None = no data."""
        ref = self._reference_for(name, scope, reference)
        return _value(name, self.window(scope, since, until, parts_of(name)), ref)

    def values(self, scope: Scope, since: dt.datetime, until: dt.datetime) -> dict[str, float | None]:
        """Every plain metric (:data:`METRIC_NAMES`) of a scope over one window, from one merge."""
        window = self.window(scope, since, until, frozenset({"latency", "delay"}))
        return {name: _value(name, window, None) for name in METRIC_NAMES}

    def series(
        self,
        name: str,
        scope: Scope,
        bucket: str,
        since: dt.datetime,
        until: dt.datetime,
        *,
        reference: str | None = None,
    ) -> list[tuple[dt.datetime, float | None]]:
        """A metric per bucket (``minute``, ``hour``, ``day``) from ``since`` (rounded down) to ``until``."""
        return self.series_many([name], scope, bucket, since, until, reference=reference)[name]

    def series_many(
        self,
        names: Sequence[str],
        scope: Scope,
        bucket: str,
        since: dt.datetime,
        until: dt.datetime,
        *,
        reference: str | None = None,
    ) -> dict[str, list[tuple[dt.datetime, float | None]]]:
        """Several metrics per bucket, as :meth:`series` gives each, from one read of the rollups.

        A dashboard draws a dozen series of one scope and window: reading and merging each bucket's
        sketches once for all of them costs about what one series costs.
        """
        width = windows.width_of(bucket)
        refs = {name: self._reference_for(name, scope, reference) for name in names}
        start = windows.floor(windows.seconds(since), width)
        end = windows.ceil(windows.seconds(until), width)
        if (end - start) // width > 10_000:
            raise BadParameter(
                f"{(end - start) // width} {bucket}s is too many points (at most 10000)", field="bucket"
            )
        parts = frozenset().union(*(parts_of(name) for name in names))
        by_bucket: dict[int, list[BucketState]] = {}
        for row in self.store.rollups(
            RollupFilter(width, scope.system, scope.model, scope.version, start, end)
        ):
            by_bucket.setdefault(row.bucket, []).append(BucketState.from_bytes(row.data, parts))
        out: dict[str, list[tuple[dt.datetime, float | None]]] = {name: [] for name in names}
        for t in range(start, end, width):
            state = merged(by_bucket.get(t, []))
            at = windows.at(t)
            for name in names:
                out[name].append((at, _value(name, state, refs[name])))
        return out

    def drift(self, scope: Scope, reference: str, since: dt.datetime, until: dt.datetime) -> DriftReport:
        """Every feature's drift in the window against ``reference``."""
        ref = self.references.state(reference, scope, self.window)
        window = self.window(scope, since, until)
        return DriftReport(
            scope, reference, since, until, window.volume, drift_math.drift_report(window, ref),
            drift_math.output_drift(window, ref),
        )  # fmt: skip

    def scopes(self, system: str | None = None) -> list[ScopeSummary]:
        """Every system/model/version the rollups know, with all-time volume, errors and latency."""
        groups: dict[ScopeKey, list[Rollup]] = {}
        for row in self.store.rollups(RollupFilter(86400, system=system)):
            groups.setdefault((row.system, row.model, row.version), []).append(row)
        summaries = []
        for (sys_, model, version), rows in sorted(groups.items()):
            total = merged(BucketState.from_bytes(r.data, frozenset({"latency"})) for r in rows)
            summaries.append(
                ScopeSummary(
                    sys_,
                    model,
                    version,
                    total.volume,
                    _value("error_rate", total, None),
                    total.latency_quantile(0.5),
                    total.latency_quantile(0.95),
                    windows.at(rows[0].bucket),
                    windows.at(rows[-1].bucket),
                )
            )
        return summaries

    def _reference_for(self, name: str, scope: Scope, reference: str | None) -> BucketState | None:
        base, _, feature = name.partition(":")
        if base in FEATURE_METRICS or name == "output_psi":
            if base in FEATURE_METRICS and not feature:
                raise BadParameter(f"{base} needs a feature: {base}:<feature>", field="metric")
            if base in ("psi", "jsd", "wasserstein", "type_change_rate") or name == "output_psi":
                if reference is None:
                    raise BadParameter(f"metric {name} needs a reference", field="reference")
                return self.references.state(reference, scope, self.window)
            return self.references.state(reference, scope, self.window) if reference is not None else None
        if name not in METRIC_NAMES:
            raise BadParameter(
                f"unknown metric {name!r}: one of {', '.join(METRIC_NAMES)}, output_psi, "
                f"or {'|'.join(FEATURE_METRICS)}:<feature>",
                field="metric",
            )
        return None

    def add_reference(self, name: str, data: Any, *, system: str | None = None) -> Reference:
        """Keep a reference data set (pandas DataFrame, pyarrow Table, or a Parquet/CSV path) as ``name``."""
        return self.references.add(name, data, system=system)


def parts_of(name: str) -> frozenset[str]:
    """Which sketches metric ``name`` reads beside the counts."""
    base, _, feature = name.partition(":")
    if feature and base in FEATURE_METRICS:
        return frozenset({f"feature:{feature}"})
    if name.startswith("latency_p"):
        return frozenset({"latency"})
    return {"output_psi": frozenset({"outputs"}), "label_delay_p50": frozenset({"delay"})}.get(name, COUNTS)


def _value(name: str, state: BucketState, reference: BucketState | None) -> float | None:
    """The metric ``name`` of a merged state (``reference`` given for drift metrics)."""
    base, _, feature = name.partition(":")
    if feature and base in FEATURE_METRICS:
        if not state.rows and not (reference and reference.features.get(feature)):
            return None
        found = drift_math.feature_drift(feature, state, reference or BucketState())
        return getattr(found, base)  # type: ignore[no-any-return]
    if name == "output_psi":
        return drift_math.output_drift(state, reference or BucketState())
    if name == "volume":
        return float(state.volume)
    if name == "error_rate":
        return state.errors / state.volume if state.volume else None
    if name.startswith("latency_p"):
        return state.latency_quantile(int(name.removeprefix("latency_p")) / 100)
    if name == "label_delay_p50":
        return None if state.delay is None else float(state.delay.get_quantile(0.5))
    measures = {
        "accuracy": truth.accuracy,
        "precision": lambda s: truth.macro(s, 0),
        "recall": lambda s: truth.macro(s, 1),
        "f1": lambda s: truth.macro(s, 2),
        "mae": truth.mae,
        "rmse": truth.rmse,
        "override_rate": truth.override_rate,
    }
    return measures[name](state)


def add_reference(
    store: MonitorStore,
    name: str,
    data: Any,
    *,
    system: str | None = None,
    policy: MonitoringPolicy | None = None,
    privacy: Policy | None = None,
    keyring: Keyring | None = None,
) -> Reference:
    """Keep a reference data set (a pandas DataFrame, a pyarrow Table, or a Parquet/CSV path) as ``name``.

    Give the same ``policy``, ``privacy`` and ``keyring`` as the monitors that will use it, so its
    features are read (and protected categories masked) the same way as the stream's.
    """
    return Monitor(store, policy, privacy=privacy, keyring=keyring).add_reference(name, data, system=system)
