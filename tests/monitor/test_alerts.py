"""Alert rules: evaluation over a MetricSource, transitions as admin entries, state recovered from the log,
no double transition when evaluators race, and nothing personal in an alert entry."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferlog.monitor.alerts import (
    ALERT_FIRED,
    ALERT_RESOLVED,
    Alerter,
    AlertState,
    Reading,
    evaluate,
    read_state,
    recent_transitions,
)
from inferlog.monitor.policy import AlertRule, MonitoringPolicy
from inferlog.monitor.scheduler import AlertSchedule
from inferlog.monitor.source import Scope
from inferlog.pipeline import Pipeline
from inferlog.privacy.policy import parse_policy
from inferlog.record.ids import uuid7
from inferlog.record.model import AdminEntry, InferenceRecord, Model
from inferlog.retention import Governance
from inferlog.store import Store, open_store
from inferlog.store.base import Query
from tests.helpers import backend_store, backend_url, wait_for
from tests.monitor.alerting import T0, EventSource

MINUTE = dt.timedelta(minutes=1)
ERRORS = AlertRule(
    name="credit errors", metric="error_rate", system="credit", window=15 * MINUTE, above=0.05, min_volume=10
)
DRIFT = AlertRule(
    name="income drift", metric="psi:income", system="credit", window=dt.timedelta(days=1), above=0.2,
    reference="q3", model="scorer", version="1",
)  # fmt: skip
POLICY = MonitoringPolicy(alerts=(ERRORS, DRIFT))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = backend_store(request, tmp_path / "alerts.db")
    yield opened
    opened.close()


def alert_entries(store: Store) -> list[AdminEntry]:
    page = store.query(Query(kind="admin", limit=1000))
    return [s.entry for s in page if isinstance(s.entry, AdminEntry) and s.entry.action.startswith("alert.")]


def bad_window(source: EventSource, at: dt.datetime, errors: int = 3, total: int = 20) -> None:
    """``total`` records in the 15 minutes before ``at``, ``errors`` of them failed."""
    source.add(at - 5 * MINUTE, ok=False, count=errors)
    source.add(at - 5 * MINUTE, count=total - errors)


# -- evaluation, pure ---------------------------------------------------------------------------


def test_a_rule_fires_above_its_threshold_and_resolves_below() -> None:
    """evaluate() decides fire, nothing, resolve as the window's error rate crosses 5 %; the window is trailing."""
    source = EventSource()
    bad_window(source, T0)
    state = AlertState()
    [fired] = evaluate([ERRORS], source, T0, state)
    assert fired.firing
    assert fired.action == ALERT_FIRED
    assert fired.reading.value == pytest.approx(0.15)
    name, scope, since, until, reference = source.calls[0]
    assert (name, scope, since, until, reference) == (
        "error_rate",
        Scope("credit"),
        T0 - 15 * MINUTE,
        T0,
        None,
    )
    # Nothing written: evaluate() is pure, so the same state gives the same decision.
    assert len(evaluate([ERRORS], source, T0, state)) == 1
    later = T0 + 20 * MINUTE  # the bad records have left the window; the new ones are fine
    source.add(later - MINUTE, count=30)
    assert evaluate([ERRORS], source, later, state) == []  # not firing, still fine: no transition


def test_no_data_and_low_volume_give_no_verdict() -> None:
    """None from the source, fewer records than min_volume, or a failing metric: no transition either way."""
    source = EventSource()
    assert evaluate([ERRORS], source, T0, AlertState()) == []  # no records at all
    bad_window(source, T0, errors=5, total=9)  # 55 % errors, but 9 < min_volume 10
    assert evaluate([ERRORS], source, T0, AlertState()) == []
    source.fail.add("error_rate")
    reading = Reading(ERRORS, T0, None, error="RuntimeError: boom")
    assert reading.breached is None
    assert evaluate([ERRORS], source, T0, AlertState()) == []


def test_below_rules_and_references_reach_the_source() -> None:
    """A below-threshold rule fires under it; a drift rule asks with its scope and reference."""
    low = AlertRule(name="accuracy", metric="accuracy", system="credit", window=MINUTE, below=0.8)
    source = EventSource(fixed={"accuracy": 0.7, "psi:income": 0.35})
    transitions = evaluate([low, DRIFT], source, T0, AlertState())
    assert [t.rule.name for t in transitions] == ["accuracy", "income drift"]
    assert ("psi:income", Scope("credit", "scorer", "1"), T0 - dt.timedelta(days=1), T0, "q3") in source.calls
    source.fixed["accuracy"] = 0.9
    assert [t.rule.name for t in evaluate([low], source, T0, AlertState())] == []


# -- on record ---------------------------------------------------------------------------------


def test_fire_and_resolve_are_admin_entries_and_state_survives_a_restart(store: Store) -> None:
    """Each transition is one admin entry; a new Alerter on the same log neither re-fires nor forgets."""
    source = EventSource()
    bad_window(source, T0)
    alerter = Alerter(store, MonitoringPolicy(alerts=(ERRORS,)), source)
    [fired] = alerter.run_once(T0)
    assert fired.action == ALERT_FIRED
    assert alerter.state.firing("credit errors")
    assert alerter.run_once(T0 + MINUTE) == []  # still above: no second entry

    restarted = Alerter(store, MonitoringPolicy(alerts=(ERRORS,)), source)  # a new process, say
    assert restarted.run_once(T0 + 2 * MINUTE) == []  # it knows the rule fires: no re-fire
    assert restarted.state.firing("credit errors")

    later = T0 + 30 * MINUTE
    source.add(later - MINUTE, count=50)
    [resolved] = restarted.run_once(later)
    assert resolved.action == ALERT_RESOLVED
    assert resolved.previous == fired.id
    assert (
        Alerter(store, MonitoringPolicy(alerts=(ERRORS,)), source).refresh().firing("credit errors") is False
    )

    entries = alert_entries(store)
    assert [e.action for e in entries] == [ALERT_FIRED, ALERT_RESOLVED]
    assert [e.id for e in entries] == [fired.id, resolved.id]
    assert entries[0].ts == T0
    assert entries[1].ts == later
    assert entries[1].details["fired_at"] == "2026-11-02T12:00:00Z"
    recent = recent_transitions(store, limit=10)
    assert [(s.rule, s.firing) for s in recent] == [("credit errors", False), ("credit errors", True)]


def test_nothing_personal_goes_into_an_alert_entry(store: Store) -> None:
    """The entry holds the rule, metric, scope, threshold, window and numbers: exactly these keys, no record data."""
    record = InferenceRecord(
        id=uuid7(), system="credit", ts=T0 - MINUTE, model=Model("scorer", "1"),
        input={"income": 52_000, "name": "Jane Roe"}, output={"score": 0.91}, subject="customer-42",
        actor="alice@example.com", status="error",
    )  # fmt: skip
    store.append(Pipeline().prepare_all([record]))
    source = EventSource(fixed={"psi:income": 0.31})
    Alerter(store, MonitoringPolicy(alerts=(DRIFT,)), source, actor="monitor").run_once(T0)
    [entry] = alert_entries(store)
    assert entry.system == "credit"
    assert entry.actor == "monitor"
    assert entry.attributes == {}
    assert entry.sealed is None
    assert entry.details == {
        "rule": "income drift",
        "metric": "psi:income",
        "scope": {"system": "credit", "model": "scorer", "version": "1"},
        "condition": "above",
        "threshold": 0.2,
        "value": 0.31,
        "window": "1d",
        "since": "2026-11-01T12:00:00Z",
        "until": "2026-11-02T12:00:00Z",
        "previous": None,
        "reference": "q3",
    }
    text = str(entry)
    for personal in ("Jane Roe", "52000", "customer-42", "alice@example.com", "0.91", record.id):
        assert personal not in text


def race(url: str) -> None:
    """Two evaluators on their own connections to ``url`` see the same breach at once."""
    first, second = open_store(url), open_store(url)
    try:
        source = EventSource(barrier=threading.Barrier(2))
        bad_window(source, T0)
        policy = MonitoringPolicy(alerts=(AlertRule("r", "error_rate", "credit", 15 * MINUTE, above=0.05),))
        alerters = [Alerter(first, policy, source), Alerter(second, policy, source)]
        made = [0, 0]

        def run(i: int) -> None:
            # They measure at slightly different times, so their entries' bodies differ too.
            made[i] = len(alerters[i].run_once(T0 + i * dt.timedelta(seconds=1)))

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(made) == [0, 1], url
        assert [e.action for e in alert_entries(first)] == [ALERT_FIRED], url
        assert sum(a.raced for a in alerters) == 1
        assert all(a.state.firing("r") for a in alerters)  # the loser read the winner's entry
    finally:
        first.close()
        second.close()


def test_racing_evaluators_write_each_transition_once(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Two evaluators measure the same breach at once: one fired entry, one writer (SQLite and PostgreSQL)."""
    for backend in ("sqlite", "postgresql"):
        race(backend_url(request, tmp_path / f"race-{backend}.db", backend))


def test_a_stale_evaluator_cannot_fork_the_history(store: Store) -> None:
    """An evaluator that missed a fire and a resolve cannot write either again: their ids are taken."""
    source = EventSource()
    bad_window(source, T0)
    policy = MonitoringPolicy(alerts=(ERRORS,))
    stale = Alerter(store, policy, source)
    stale.refresh()  # reads the empty log, then sleeps through what follows
    live = Alerter(store, policy, source)
    live.run_once(T0)
    later = T0 + 30 * MINUTE
    source.add(later - MINUTE, count=50)
    live.run_once(later)
    stale_state = AlertState()  # what the stale one believed: nothing ever fired
    [again] = evaluate([ERRORS], source, T0, stale_state)
    assert again.id == alert_entries(store)[0].id  # the same transition, so the same id
    [result] = store.append(Pipeline().prepare_all([again.entry()]))
    assert result.status in ("duplicate", "conflict")
    assert len(alert_entries(store)) == 2


def test_state_ignores_foreign_admin_entries(store: Store) -> None:
    """Admin entries of other kinds, or alert actions without a rule name, do not change the state."""
    odd = AdminEntry(id=uuid7(), system="credit", ts=T0, action=ALERT_FIRED, details={"note": "no rule"})
    other = AdminEntry(id=uuid7(), system="*", ts=T0, action="key.created", details={"rule": "r"})
    store.append(Pipeline().prepare_all([odd, other]))
    state = read_state(store)
    assert state.rules == {}
    assert state.after == 2


def test_listings_keep_the_transition_time_and_the_window_apart(store: Store) -> None:
    """AlertStatus.to_dict: ``at`` is when the transition happened, ``since``/``until`` bound its window."""
    source = EventSource()
    bad_window(source, T0)
    alerter = Alerter(store, MonitoringPolicy(alerts=(ERRORS,)), source)
    alerter.run_once(T0)
    [status] = alerter.state.firing_alerts()
    view = status.to_dict()
    assert view["at"] == "2026-11-02T12:00:00Z"
    assert view["since"] == "2026-11-02T11:45:00Z"
    assert view["until"] == "2026-11-02T12:00:00Z"
    assert view["firing"] is True
    assert "previous" not in view


def test_the_schedule_outlives_a_failing_pass(tmp_path: Path) -> None:
    """A pass that fails (the store is gone) is counted and logged; the thread keeps going and stops on close."""
    store = open_store(f"sqlite:///{tmp_path / 'gone.db'}")
    source = EventSource()
    bad_window(source, T0)
    schedule = AlertSchedule(Alerter(store, MonitoringPolicy(alerts=(ERRORS,)), source), 0.01)
    store.close()
    schedule.start()
    wait_for(lambda: schedule.failures >= 2, "two failed passes")
    schedule.close()
    assert schedule.failures >= 2
    assert not any(t.name == "inferlog-alerts" for t in threading.enumerate())


def test_the_recorded_policy_never_holds_a_webhook_secret(store: Store) -> None:
    """policy.changed keeps the [monitoring] table, with webhook URLs masked (their path is a secret)."""
    text = (
        '[monitoring]\nwebhooks = ["https://hooks.example.com/services/T0/B0/secret-token"]\n'
        '[[monitoring.alerts]]\nname = "r"\nmetric = "error_rate"\nsystem = "credit"\nabove = 0.05\n'
        'window = "15m"\nwebhook = "https://hooks.example.com/other-secret"\n'
    )
    Governance(store, parse_policy(text, "inferlog.toml"), actor="test").record_policy()
    [entry] = [s.entry for s in store.query(Query(kind="admin")) if isinstance(s.entry, AdminEntry)]
    assert entry.details["policy"]["monitoring"]["alerts"][0]["name"] == "r"
    assert "secret" not in str(entry.details)
    assert "hooks.example.com" in str(entry.details)


def test_reading_the_state_again_starts_after_everything_already_read(store: Store) -> None:
    """After a read, the cursor stands at the log's size, not at the last alert entry: the next read
    looks only at what was appended since (the console's pages read the state on every request)."""
    source = EventSource()
    bad_window(source, T0)
    [fired] = Alerter(store, MonitoringPolicy(alerts=(ERRORS,)), source).run_once(T0)
    records = [InferenceRecord(id=uuid7(), system="credit", ts=T0, model=Model("m", "1")) for _ in range(5)]
    store.append(Pipeline().prepare_all(records))
    state = read_state(store)
    assert state.after == store.size()
    assert state.firing("credit errors")
    assert [s.entry_id for s in state.firing_alerts()] == [fired.id]
