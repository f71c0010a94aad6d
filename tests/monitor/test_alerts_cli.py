"""``inferlog monitor run`` and ``inferlog monitor alerts`` on a real SQLite log."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid7
from inferlog.record.model import AdminEntry, InferenceRecord, Model
from inferlog.store import open_store
from inferlog.store.base import Query
from tests.cli.test_cli import assert_one_line_error, json_lines, run
from tests.helpers import wait_for

SOURCE = "tests.monitor.alerting:store_source"
POLICY = """
[[monitoring.alerts]]
name = "credit errors"
metric = "error_rate"
system = "credit"
above = 0.05
window = "15m"
min_volume = 5
"""
ROOT = Path(__file__).parents[2]


def make_log(tmp_path: Path, errors: int, total: int = 20) -> tuple[str, Path]:
    """A log with ``total`` credit records of the last minute, ``errors`` of them failed; and the policy file."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    now = dt.datetime.now(dt.UTC)
    records = [
        InferenceRecord(
            id=uuid7(),
            system="credit",
            ts=now - dt.timedelta(minutes=1),
            model=Model("scorer", "1"),
            input={"income": 1000 + i},
            status="error" if i < errors else "ok",
            subject=f"customer-{i}",
        )
        for i in range(total)
    ]
    store = open_store(url)
    store.append(Pipeline().prepare_all(records))
    store.close()
    policy = tmp_path / "inferlog.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return url, policy


def alert_entries(url: str) -> list[AdminEntry]:
    store = open_store(url)
    try:
        page = store.query(Query(kind="admin", limit=100))
        return [
            s.entry for s in page if isinstance(s.entry, AdminEntry) and s.entry.action.startswith("alert.")
        ]
    finally:
        store.close()


def test_run_once_records_a_firing_and_alerts_lists_it(tmp_path: Path) -> None:
    """run --once appends alert.fired once (a second run adds nothing); alerts shows it, as text and JSON."""
    url, policy = make_log(tmp_path, errors=4)
    done = run("--db", url, "monitor", "run", "--once", "--policy", str(policy), "--source", SOURCE)
    assert done.exit_code == 0, done.output
    assert "alert.fired: credit errors (error_rate = 0.2)" in done.stdout
    assert "firing: credit errors" in done.stderr
    [entry] = alert_entries(url)
    assert entry.details["value"] == 0.2
    assert entry.details["volume"] == 20
    assert entry.actor is not None
    assert entry.actor.startswith("cli:")

    again = run(
        "--db", url, "monitor", "run", "--once", "--policy", str(policy), "--source", SOURCE, "--json"
    )
    assert again.exit_code == 0, again.output
    [line] = json_lines(again.stdout)
    assert (line["rule"], line["value"], line["volume"], line["firing"]) == ("credit errors", 0.2, 20, True)
    assert len(alert_entries(url)) == 1

    listed = run("--db", url, "monitor", "alerts")
    assert listed.exit_code == 0, listed.output
    assert "firing: 1" in listed.stdout
    assert "credit errors" in listed.stdout
    assert "above 0.05" in listed.stdout
    as_json = json.loads(run("--db", url, "monitor", "alerts", "--json").stdout)
    assert [a["rule"] for a in as_json["firing"]] == ["credit errors"]
    assert [a["action"] for a in as_json["recent"]] == ["alert.fired"]
    assert json.loads(run("--db", url, "monitor", "alerts", "--json", "--system", "fraud").stdout) == {
        "firing": [],
        "recent": [],
    }


def test_run_uses_the_group_config_too(tmp_path: Path) -> None:
    """Without --policy, the policy file comes from --config; a healthy window records nothing."""
    url, policy = make_log(tmp_path, errors=0)
    done = run("--db", url, "--config", str(policy), "monitor", "run", "--source", SOURCE)
    assert done.exit_code == 0, done.output
    assert "0 transition(s) recorded; firing: none" in done.stderr
    assert alert_entries(url) == []
    assert "firing: none" in run("--db", url, "monitor", "alerts").stdout


def test_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    """No rules, a bad rule, a bad --source, --once with --every: one line each, nothing written."""
    url, policy = make_log(tmp_path, errors=4)
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert_one_line_error(
        run("--db", url, "monitor", "run", "--policy", str(empty), "--source", SOURCE), "no alert rules"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(POLICY.replace("above", "abov"), encoding="utf-8")
    assert_one_line_error(
        run("--db", url, "monitor", "run", "--policy", str(bad), "--source", SOURCE),
        "monitoring.alerts[0].abov: unknown key", "did you mean above?",
    )  # fmt: skip
    assert_one_line_error(
        run("--db", url, "monitor", "run", "--policy", str(policy), "--source", "nowhere"), "module:callable"
    )
    assert_one_line_error(
        run(
            "--db",
            url,
            "monitor",
            "run",
            "--once",
            "--every",
            "1m",
            "--policy",
            str(policy),
            "--source",
            SOURCE,
        ),
        "--once or --every",
    )
    assert alert_entries(url) == []


def test_run_measures_with_the_monitoring_engine_by_default(tmp_path: Path) -> None:
    """Without --source, the built-in engine folds the log and measures the rule: 4 failed of 20 fires."""
    url, policy = make_log(tmp_path, errors=4)
    done = run("--db", url, "monitor", "run", "--once", "--policy", str(policy))
    assert done.exit_code == 0, done.output
    assert "alert.fired: credit errors (error_rate = 0.2)" in done.stdout
    fired = alert_entries(url)
    assert [e.action for e in fired] == ["alert.fired"]
    assert fired[0].details["value"] == 0.2


def test_run_every_evaluates_until_stopped(tmp_path: Path) -> None:
    """run --every in its own process records the firing on its first pass and exits 0 on SIGTERM."""
    url, policy = make_log(tmp_path, errors=4)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferlog", "--db", url, "monitor", "run", "--every", "1s",
         "--policy", str(policy), "--source", SOURCE],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: alert_entries(url), "the first pass to record the firing", seconds=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "evaluating 1 rule(s) every 1s" in err
    assert out.count("alert.fired: credit errors") == 1
    assert len(alert_entries(url)) == 1
