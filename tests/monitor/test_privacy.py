"""The monitor and the privacy policy: sealed fields only with the keys, masked categories, erasure refolds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import inferlog
from inferlog.keystore import LocalKeyStore
from inferlog.monitor.engine import Monitor
from inferlog.monitor.source import Scope
from inferlog.privacy.policy import load_policy
from inferlog.retention import Governance, erase
from inferlog.store import open_store
from inferlog.store.base import RollupFilter

POLICY = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]
"""
PLANTED = "Quartermaine"
MODEL = inferlog.Model("scorer", "1")
SCOPE = Scope("credit")


def _log(tmp_path: Path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    with inferlog.open(url, system="credit", config=config, spool_dir=tmp_path / "spool") as log:
        for i in range(40):
            log.record(
                model=MODEL, input={"name": PLANTED if i < 10 else f"other{i % 3}", "income": float(i)},
                output={"prediction": i % 2}, subject="customer-7731" if i < 10 else f"c{i}",
            )  # fmt: skip
        log.flush()
    return url, config


def test_sealed_inputs_feed_the_monitor_only_with_the_key_store(tmp_path: Path) -> None:
    """Without keys a sealed input is no feature; with them it is, and its categories are keyed digests."""
    url, config = _log(tmp_path)
    store = open_store(url)
    keys = LocalKeyStore(tmp_path / "keys.db")
    try:
        now = dt.datetime.now(dt.UTC)
        since, until = now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)
        blind = Monitor(store)
        blind.catch_up()
        state = blind.window(SCOPE, since, until)
        assert (state.volume, state.features) == (40, {})
        seeing = Monitor(store, privacy=load_policy(config), keyring=keys)
        seeing.rebuild()
        state = seeing.window(SCOPE, since, until)
        assert state.features["income"].numbers == 40
        names = state.features["name"].cats.counts
        assert sum(names.values()) == 40
        assert all(value.startswith("#") and len(value) == 17 for value in names)
        assert sorted(names.values()) == [10, 10, 10, 10]
        assert all(value.startswith("#") for value in state.out_cats.counts)
        raw = b"".join(row.data for level in (60, 3600, 86400) for row in store.rollups(RollupFilter(level)))
        assert PLANTED.encode() not in raw
        assert b"other1" not in raw
        # Erasure: the subject's ten inputs drop out of the rollups as soon as the fold meets the erasure.
        erase(Governance(store, load_policy(config), keys, actor="dpo"), "customer-7731")
        seeing.catch_up()
        state = seeing.window(SCOPE, since, until)
        assert state.volume == 40  # the entries stay in the log (their leaves), so they still count
        assert state.features["income"].numbers == 30
        assert sorted(state.features["name"].cats.counts.values()) == [10, 10, 10]
    finally:
        keys.close()
        store.close()
