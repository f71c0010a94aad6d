"""``inferlog monitor``: show, drift, rebuild and reference add/list/remove on a real SQLite log."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

from click.testing import CliRunner, Result

from inferlog.cli import cli
from inferlog.record import Model
from inferlog.store import open_store
from inferlog.testing import make_record, prepare

NOW = dt.datetime.now(dt.UTC)


def _log(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    rng = random.Random(1)
    store = open_store(url)
    store.append(
        prepare(
            *[
                make_record(
                    system="credit",
                    model=Model(name="m", version="1"),
                    ts=NOW - dt.timedelta(minutes=i),
                    input={"income": rng.gauss(50 if i >= 100 else 80, 10), "job": rng.choice("ab")},
                    output={"prediction": i % 2},
                    latency_ms=3.0,
                    status="error" if i % 4 == 0 else "ok",
                )
                for i in range(200)
            ]
        )
    )
    store.close()
    lines = ["income,job"] + [f"{rng.gauss(50, 10)},{rng.choice('ab')}" for _ in range(300)]
    (tmp_path / "ref.csv").write_text("\n".join(lines) + "\n")
    return url


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", url, "monitor", *args])


def test_show_lists_scopes_and_one_scopes_metrics(tmp_path: Path) -> None:
    """Without --system every scope; with it the window's metrics, as a table or JSON."""
    url = _log(tmp_path)
    scopes = run(url, "show")
    assert scopes.exit_code == 0, scopes.output
    assert "credit" in scopes.output
    assert "200" in scopes.output
    shown = run(url, "show", "--system", "credit", "--since", "1d", "--json")
    assert shown.exit_code == 0, shown.output
    metrics = json.loads(shown.output)["metrics"]
    assert metrics["volume"] == 200
    assert metrics["error_rate"] == 0.25
    table = run(url, "show", "--system", "credit")
    assert "error_rate" in table.output
    assert "0.25" in table.output


def test_drift_against_a_kept_reference_flags_income(tmp_path: Path) -> None:
    """reference add keeps a CSV; drift against it flags the shifted feature; remove forgets it."""
    url = _log(tmp_path)
    added = run(url, "reference", "add", "base", str(tmp_path / "ref.csv"), "--system", "credit")
    assert added.exit_code == 0, added.output
    assert "300 rows" in added.output
    assert run(url, "reference", "list").output.startswith("base\tcredit\t300 rows")
    report = run(url, "drift", "--system", "credit", "--reference", "base", "--since", "100m", "--json")
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["drifted"] == ["income"]
    table = run(url, "drift", "--system", "credit", "--reference", "base", "--since", "100m")
    assert "major" in table.output
    assert run(url, "reference", "remove", "base").exit_code == 0
    gone = run(url, "drift", "--system", "credit", "--reference", "base")
    assert gone.exit_code == 1
    assert "no reference 'base'" in gone.output
    assert "Traceback" not in gone.output


def test_rebuild_folds_everything_again_and_bad_input_is_one_line(tmp_path: Path) -> None:
    """rebuild reports the entries it folded; a bad time or a version without model is one line, exit 1."""
    url = _log(tmp_path)
    rebuilt = run(url, "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "from 200 entries" in rebuilt.output
    for args in (
        ("show", "--system", "credit", "--since", "someday"),
        ("show", "--system", "credit", "--version", "1"),
    ):
        bad = run(url, *args)
        assert bad.exit_code == 1
        assert len(bad.output.strip().splitlines()) == 1, bad.output
