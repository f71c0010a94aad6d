"""Alert rules evaluated over a MetricSource; every firing and resolving is an ``admin`` entry in the log.

A rule *fires* while its metric over the trailing window ``[now - window, now)`` is above (or below)
its threshold, and *resolves* when it no longer is. A window with no data (the source answers
``None``), with fewer records than ``min_volume``, or whose metric could not be computed gives no
verdict: the rule stays as it was, so a quiet hour neither resolves nor fires anything.

The log is the alert state. Each transition is an ``alert.fired`` / ``alert.resolved`` admin entry
of the rule's system, and whether a rule fires is whatever its newest such entry says: a restarted
evaluator neither fires again nor forgets. A transition's id follows from the rule's name, the id of
the transition before it and the action, so evaluators that race from the same state write the same
id; the store keeps the first and refuses the rest (a duplicate id never gets a second ``seq``).

What an entry holds is chosen so that nothing personal can go into it: the rule, the metric's name,
the scope (system, model, version), the threshold, the window and its bounds, the measured number
and the record count. Never a payload value, a subject or an actor of an inference.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from inferlog.monitor.policy import AlertRule, MonitoringPolicy
from inferlog.monitor.rules import format_window
from inferlog.monitor.source import MetricSource, Scope
from inferlog.pipeline import Pipeline
from inferlog.record.model import AdminEntry, StoredEntry
from inferlog.record.validate import checked
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.protocols import EntryReader, EntryStore

log = logging.getLogger("inferlog.monitor.alerts")

Action = Literal["alert.fired", "alert.resolved"]
ALERT_FIRED: Action = "alert.fired"
ALERT_RESOLVED: Action = "alert.resolved"
ALERT_ACTIONS: tuple[Action, ...] = (ALERT_FIRED, ALERT_RESOLVED)
DEFAULT_ACTOR = "monitor"
RECENT = 1000  # transitions an AlertState keeps for listings (the log keeps them all)


def scope_of(rule: AlertRule) -> Scope:
    """What a rule measures: its system, narrowed to its model and version when it names them."""
    return Scope(system=rule.system, model=rule.model, version=rule.version)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Reading:
    """One rule's metric over its window at one time, and the verdict it gives (None: no verdict)."""

    rule: AlertRule
    at: dt.datetime
    value: float | None
    volume: float | None = None
    error: str | None = None  # why the metric could not be had (the source raised, or gave NaN)

    @property
    def since(self) -> dt.datetime:
        return self.at - self.rule.window

    @property
    def breached(self) -> bool | None:
        """True above (below) the threshold, False within it, None without a verdict."""
        if self.value is None or self.error is not None:
            return None
        if self.rule.min_volume and (self.volume is None or self.volume < self.rule.min_volume):
            return None
        if self.rule.above is not None:
            return self.value > self.rule.above
        return self.rule.below is not None and self.value < self.rule.below


def measure(rule: AlertRule, source: MetricSource, now: dt.datetime) -> Reading:
    """Ask ``source`` for the rule's metric (and, with ``min_volume``, the volume) over its window.

    A source that raises, or answers a number that is not finite, gives a Reading with ``error``
    (logged): one broken metric does not stop the other rules.
    """
    since, scope = now - rule.window, scope_of(rule)
    try:
        value = source.metric(rule.metric, scope, since, now, reference=rule.reference)
        volume = None
        if rule.min_volume:
            volume = value if rule.metric == "volume" else source.metric("volume", scope, since, now)
    except Exception as exc:  # noqa: BLE001 - any source failure is one rule without a verdict
        log.warning("alert rule %r: the metric %s could not be computed: %s", rule.name, rule.metric, exc)
        return Reading(rule, now, None, error=f"{type(exc).__name__}: {exc}")
    for number in (value, volume):
        if number is not None and not math.isfinite(number):
            log.warning("alert rule %r: the metric %s is %r, not a number", rule.name, rule.metric, number)
            return Reading(rule, now, None, error=f"not a finite number: {number!r}")
    return Reading(
        rule, now, None if value is None else float(value), None if volume is None else float(volume)
    )


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """What the log says of one rule: its newest transition."""

    rule: str
    system: str
    firing: bool
    entry_id: str  # the newest transition's id (the next one follows from it)
    seq: int
    at: dt.datetime  # when that transition happened (``since``/``until`` in details bound its window)
    details: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what ``GET /v1/alerts`` and ``inferlog monitor alerts --json`` show)."""
        return {
            "rule": self.rule,
            "system": self.system,
            "firing": self.firing,
            "at": _iso(self.at),
            "entry_id": self.entry_id,
            "seq": self.seq,
            **{k: v for k, v in self.details.items() if k not in ("rule", "previous")},
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule starting or stopping to fire, as decided from a Reading and the state the log gave."""

    reading: Reading
    firing: bool
    previous: str | None  # the id of the transition this one follows (None: the rule's first)
    fired_at: dt.datetime | None = None  # a resolve: when the alert it ends fired

    @property
    def rule(self) -> AlertRule:
        return self.reading.rule

    @property
    def action(self) -> Action:
        return ALERT_FIRED if self.firing else ALERT_RESOLVED

    @property
    def at(self) -> dt.datetime:
        return self.reading.at

    @property
    def id(self) -> str:
        """Follows from (rule, previous transition, action): racing evaluators write the same id."""
        seed = f"inferlog/alert/v1|{self.rule.name}|{self.previous or ''}|{self.action}"
        return str(uuid.UUID(bytes=hashlib.sha256(seed.encode("utf-8")).digest()[:16], version=4))

    def details(self) -> dict[str, Any]:
        """The admin entry's ``details``: the rule and the numbers, nothing about any one record."""
        rule, reading = self.rule, self.reading
        scope = {"system": rule.system}
        if rule.model is not None:
            scope["model"] = rule.model
        if rule.version is not None:
            scope["version"] = rule.version
        out: dict[str, Any] = {
            "rule": rule.name,
            "metric": rule.metric,
            "scope": scope,
            "condition": "above" if rule.above is not None else "below",
            "threshold": rule.above if rule.above is not None else rule.below,
            "value": reading.value,
            "window": format_window(rule.window),
            "since": _iso(reading.since),
            "until": _iso(reading.at),
            "previous": self.previous,
        }
        if rule.reference is not None:
            out["reference"] = rule.reference
        if rule.min_volume:
            out["min_volume"] = rule.min_volume
            out["volume"] = reading.volume
        if self.fired_at is not None:
            out["fired_at"] = _iso(self.fired_at)
        return out

    def entry(self, actor: str | None = DEFAULT_ACTOR) -> AdminEntry:
        """The admin entry that puts this transition on record (of the rule's system, at its time)."""
        return AdminEntry(
            id=self.id, system=self.rule.system, ts=self.at, actor=actor, action=self.action,
            details=self.details(),
        )  # fmt: skip


class AlertState:
    """Which rules fire, as the log's alert entries say; fed entries in ``seq`` order by :func:`read_state`."""

    def __init__(self) -> None:
        self.after = 0  # the last seq read
        self.rules: dict[str, AlertStatus] = {}
        self.recent: collections.deque[AlertStatus] = collections.deque(maxlen=RECENT)

    def status(self, rule: str) -> AlertStatus | None:
        return self.rules.get(rule)

    def firing(self, rule: str) -> bool:
        found = self.rules.get(rule)
        return found is not None and found.firing

    def firing_alerts(self) -> list[AlertStatus]:
        """The rules that fire now, oldest first."""
        return sorted((s for s in self.rules.values() if s.firing), key=lambda s: s.seq)

    def apply(self, stored: StoredEntry) -> None:
        """Take one stored entry into account (anything but an alert transition is skipped)."""
        self.after = max(self.after, stored.seq)
        entry = stored.entry
        if not isinstance(entry, AdminEntry) or entry.action not in ALERT_ACTIONS:
            return
        name = entry.details.get("rule")
        if not isinstance(name, str):
            return  # not one this module wrote: ignored rather than trusted
        status = AlertStatus(
            rule=name, system=entry.system, firing=entry.action == ALERT_FIRED, entry_id=entry.id,
            seq=stored.seq, at=entry.ts, details=dict(entry.details),
        )  # fmt: skip
        self.rules[name] = status
        self.recent.append(status)


def read_state(store: EntryReader, state: AlertState | None = None) -> AlertState:
    """``state`` brought up to date with the admin entries appended since it last read (all, if None)."""
    state = state if state is not None else AlertState()
    # Entries up to the size read now are all visible to the query below (seqs are gap-free and
    # committed in order), so afterwards the cursor may move past them: the next call then reads only
    # what was appended since, not every non-admin entry after the last admin one (no index on kind).
    size = store.size()
    while True:
        page = store.query(Query(kind="admin", after=state.after, limit=MAX_PAGE))
        for stored in page:
            state.apply(stored)
        if page.next_cursor is None:
            state.after = max(state.after, size)
            return state


def decide(readings: Iterable[Reading], state: AlertState) -> list[Transition]:
    """The transitions the readings call for, given what the log says fires now."""
    out = []
    for reading in readings:
        breached = reading.breached
        status = state.status(reading.rule.name)
        firing = status is not None and status.firing
        if breached is None or breached == firing:
            continue
        previous = status.entry_id if status is not None else None
        fired_at = status.at if status is not None and firing else None
        out.append(Transition(reading, firing=breached, previous=previous, fired_at=fired_at))
    return out


def evaluate(
    rules: Sequence[AlertRule], source: MetricSource, now: dt.datetime, state: AlertState
) -> list[Transition]:
    """Measure every rule at ``now`` and return the transitions that follow (nothing is written)."""
    return decide((measure(rule, source, now) for rule in rules), state)


def record_transition(store: EntryStore, transition: Transition, actor: str | None = DEFAULT_ACTOR) -> bool:
    """Append a transition's admin entry; False if another evaluator already wrote this transition."""
    [result] = store.append(Pipeline().prepare_all([checked(transition.entry(actor))]))
    return result.status == "new"


class Notifier(Protocol):
    """Where an alerter sends the transitions it wrote (:class:`inferlog.monitor.webhooks.WebhookNotifier`)."""

    def notify(self, transition: Transition, entry_id: str) -> None: ...


@dataclass(eq=False)
class Alerter:
    """Evaluates a policy's rules against a source and keeps the log's alert entries in step.

    ``run_once`` reads the log's alert state, measures every rule, appends the transitions that
    follow and hands those this process wrote to the notifier; ``readings`` and ``state`` are what
    the gauges show. Safe to call from several threads (one pass at a time).
    """

    store: EntryStore
    policy: MonitoringPolicy
    source: MetricSource
    notifier: Notifier | None = None
    actor: str | None = DEFAULT_ACTOR
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    state: AlertState = field(default_factory=AlertState)
    readings: dict[str, Reading] = field(default_factory=dict)
    passes: int = 0
    written: int = 0  # transitions this process appended
    raced: int = 0  # transitions another evaluator had appended first
    errors: int = 0  # readings without a verdict because the metric failed
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        return self.policy.alerts

    def refresh(self) -> AlertState:
        """Read the alert entries appended since the last read (by anyone)."""
        return read_state(self.store, self.state)

    def run_once(self, now: dt.datetime | None = None) -> list[Transition]:
        """One pass at ``now`` (default: the clock); returns the transitions this process appended.

        If the store fails midway the error propagates, and the transitions already appended are
        still handed to the notifier.
        """
        made: list[Transition] = []
        try:
            with self._lock:
                at = now or self.clock()
                catch_up = getattr(self.source, "catch_up", None)
                if callable(catch_up):
                    catch_up()  # an incremental source (the engine) folds what was logged since its last pass
                self.refresh()
                readings = [measure(rule, self.source, at) for rule in self.rules]
                self.readings = {r.rule.name: r for r in readings}
                self.errors += sum(1 for r in readings if r.error is not None)
                for transition in decide(readings, self.state):
                    if record_transition(self.store, transition, self.actor):
                        made.append(transition)
                        self.written += 1
                        _log_transition(transition)
                    else:
                        self.raced += 1
                self.refresh()  # the state is what the log says, our own entries and a racer's alike
                self.passes += 1
        finally:
            if self.notifier is not None:
                for transition in made:
                    self.notifier.notify(transition, transition.id)
        return made


def _log_transition(transition: Transition) -> None:
    details = transition.details()
    log.warning(
        "%s: %s (%s = %s, %s %s over %s)", transition.action, transition.rule.name, transition.rule.metric,
        details["value"], details["condition"], details["threshold"], details["window"],
    )  # fmt: skip


def recent_transitions(
    store: EntryReader, limit: int = 50, systems: Sequence[str] | None = None
) -> list[AlertStatus]:
    """The newest ``limit`` alert transitions, newest first (of ``systems`` only, when given)."""
    found: list[AlertStatus] = []
    after = 0
    while len(found) < limit:
        page = store.query(Query(kind="admin", order="desc", after=after, limit=MAX_PAGE))
        for stored in page:
            one = AlertState()
            one.apply(stored)
            for status in one.recent:
                if systems is None or "*" in systems or status.system in systems:
                    found.append(status)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    return found[:limit]
