"""Retention by policy on both backends: plan, minimum, legal holds, epoch keys, verify after purge."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import inferlog
from inferlog.errors import UsageError
from inferlog.integrity.verify import audit
from inferlog.keystore import LocalKeyStore
from inferlog.privacy.policy import load_policy
from inferlog.retention import Governance, apply_retention, plan_retention
from inferlog.store import Store, open_store
from tests.helpers import of_kind, present
from tests.retention.conftest import Backend

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
MODEL = inferlog.Model("scorer", "2.1")

POLICY = """
[keystore]
path = "keys.db"

[defaults]
retention = "6mo"

[systems.chat]
retention = "1y"
"""


def seed(backend: Backend, config: Path, tmp_path: Path) -> dict[str, list[str]]:
    """Records in March (past six months), June (inside), and November, for two systems."""
    made: dict[str, list[str]] = {}
    for system in ("credit", "chat"):
        with inferlog.open(
            backend.url, system=system, config=config, spool_dir=tmp_path / f"spool-{system}"
        ) as log:
            for month, day in (("march", dt.datetime(2026, 3, 10, tzinfo=dt.UTC)),
                               ("june", dt.datetime(2026, 6, 10, tzinfo=dt.UTC)),
                               ("november", dt.datetime(2026, 11, 10, tzinfo=dt.UTC))):  # fmt: skip
                ids = [
                    log.record(model=MODEL, input={"m": month, "i": i}, subject=f"p{i}", ts=day)
                    for i in range(3)
                ]
                made[f"{system}-{month}"] = ids
            log.flush()
    return made


def _full(gov: Governance) -> Store:
    """The store a test opened for ``gov``, with every role (Governance itself needs only some)."""
    assert isinstance(gov.store, Store)
    return gov.store


def governance(backend: Backend, config: Path, tmp_path: Path) -> Governance:
    return Governance(
        open_store(backend.url),
        load_policy(config),
        LocalKeyStore(tmp_path / "keys.db"),
        actor="ops",
        now=NOW,
    )


def test_plan_then_apply_purges_what_is_past_retention(backend: Backend, tmp_path: Path) -> None:
    """Six months back from Nov 20 is May 20: March goes for credit, nothing for chat (one year)."""
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    made = seed(backend, config, tmp_path)
    gov = governance(backend, config, tmp_path)
    try:
        plan = {p.system: p for p in plan_retention(gov).systems}
        assert plan["credit"].cutoff == dt.datetime(2026, 5, 20, 12, 0, tzinfo=dt.UTC)
        assert (plan["credit"].purge, plan["chat"].purge) == (3, 0)
        assert plan["credit"].epoch_keys == ["epoch:credit:2026-03"]
        # a plan changes nothing
        assert all(not present(gov.store.get(i)).purged for i in made["credit-march"])
        apply_retention(gov)
        assert all(present(gov.store.get(i)).purged for i in made["credit-march"])
        for kept in ("credit-june", "credit-november", "chat-march"):
            assert not any(present(gov.store.get(i)).purged for i in made[kept])
        assert gov.keystore is not None
        keys = {k.name: k.destroyed_at is not None for k in gov.keystore.list_keys("epoch:")}
        assert keys["epoch:credit:2026-03"]
        assert not keys["epoch:credit:2026-06"]
        assert not keys["epoch:chat:2026-03"]
        report = audit(_full(gov))
        assert report.ok, report.problems
        assert report.purged == 3
        admin = of_kind(inferlog.AdminEntry, gov.store.query(inferlog.Query(kind="admin", limit=100)))
        applied = [e for e in admin if e.action == "retention.applied"]
        assert len(applied) == 1
        assert applied[0].details["systems"][0]["purge"] == 3
        apply_retention(gov)  # again: nothing left, no second entry
        admin = of_kind(inferlog.AdminEntry, gov.store.query(inferlog.Query(kind="admin", limit=100)))
        assert len([e for e in admin if e.action == "retention.applied"]) == 1
    finally:
        _full(gov).close()


def test_a_legal_hold_blocks_the_purge_and_the_epoch_key(backend: Backend, tmp_path: Path) -> None:
    """A hold over March for credit keeps those payloads and March's epoch key."""
    config = tmp_path / "inferlog.toml"
    config.write_text(
        POLICY
        + '\n[[holds]]\nname = "audit-2026"\nreason = "regulator inquiry"\nsystem = "credit"\n'
        + "from = 2026-03-01T00:00:00Z\nuntil = 2026-04-01T00:00:00Z\n"
        + '\n[[holds]]\nname = "claim-88"\nreason = "a claim"\nsubject = "jo.doe@example.org"\n'
    )
    made = seed(backend, config, tmp_path)
    gov = governance(backend, config, tmp_path)
    try:
        plan = {p.system: p for p in plan_retention(gov).systems}
        assert (plan["credit"].purge, plan["credit"].held, plan["credit"].epoch_keys) == (0, 3, [])
        gov.record_policy()
        apply_retention(gov)
        assert not any(present(gov.store.get(i)).purged for i in made["credit-march"])
        assert gov.keystore is not None
        assert all(k.destroyed_at is None for k in gov.keystore.list_keys("epoch:"))
        recorded = [e.body or b"" for e in gov.store.query(inferlog.Query(kind="admin", limit=10))]
        assert any(b"claim-88" in body for body in recorded)  # the policy, holds included, is on record
        assert not any(b"jo.doe@example.org" in body for body in recorded)  # but no raw subject
    finally:
        _full(gov).close()


def test_a_retention_below_the_minimum_is_refused_unless_forced(backend: Backend, tmp_path: Path) -> None:
    """30 days is below the six-month floor: refused; with force_short_retention it runs and is recorded."""
    config = tmp_path / "inferlog.toml"
    config.write_text('[defaults]\nretention = "30d"\n')
    with pytest.raises(UsageError, match="force_short_retention"):
        load_policy(config)
    config.write_text('[defaults]\nretention = "30d"\nforce_short_retention = "DPIA-9: chat kept 30 days"\n')
    policy = load_policy(config)
    gov = Governance(open_store(backend.url), policy, None, now=NOW)
    try:
        gov.record_policy()
        recorded = of_kind(inferlog.AdminEntry, gov.store.query(inferlog.Query(kind="admin", limit=10)))
        assert len(recorded) == 1
        assert recorded[0].details["forced_short_retention"] == [
            {"system": "*", "reason": "DPIA-9: chat kept 30 days"}
        ]
        assert gov.record_policy() is None  # unchanged policy: not recorded twice
    finally:
        _full(gov).close()


def test_retention_of_one_system_never_destroys_another_systems_keys(
    backend: Backend, tmp_path: Path
) -> None:
    """System "a" (six months) must not destroy the epoch keys of system "a:b" (kept forever)."""
    config = tmp_path / "inferlog.toml"
    config.write_text(
        '[keystore]\npath = "keys.db"\n[defaults]\nretention = "6mo"\n[systems."a:b"]\nretention = "forever"\n'
    )
    old = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    made = {}
    for system in ("a", "a:b"):
        with inferlog.open(backend.url, system=system, config=config, spool_dir=tmp_path / system) as log:
            made[system] = log.record(model=MODEL, input={"s": system}, ts=old)
    gov = governance(backend, config, tmp_path)
    try:
        apply_retention(gov)
        assert present(gov.store.get(made["a"])).purged
    finally:
        _full(gov).close()
    with inferlog.open(backend.url, system="a:b", config=config, spool_dir=tmp_path / "reader") as log:
        assert present(log.get(made["a:b"])).input == {"s": "a:b"}


def test_processes_recording_the_same_new_policy_at_once_record_it_once(tmp_path: Path) -> None:
    """Four Governance handles that all decide the policy is new still leave one policy.changed entry."""
    import threading

    from inferlog.store.sqlite import SQLiteStore

    config = tmp_path / "inferlog.toml"
    config.write_text('[defaults]\nretention = "1y"\n')
    url = f"sqlite:///{tmp_path / 'log.db'}"
    stores = [SQLiteStore(url) for _ in range(4)]
    start = threading.Barrier(4)

    def record(store: SQLiteStore) -> None:
        gov = Governance(store, load_policy(config), None)
        start.wait()
        gov.record_policy()

    threads = [threading.Thread(target=record, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = list(stores[0].query(inferlog.Query(kind="admin", limit=10)))
    assert len(entries) == 1
    for s in stores:
        s.close()
