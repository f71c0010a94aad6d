"""The demo: a real scikit-learn model's traffic, failures and feedback, logged through the SDK."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import tomllib

import pytest

from inferlog.demo import DAYS, DRIFTED_FEATURE, REVIEWER, VERSIONS, DemoSummary, demo_policy, run_demo
from inferlog.query import iter_entries
from inferlog.record.model import FeedbackEntry, StoredEntry
from inferlog.store import open_store
from inferlog.store.base import Query
from tests.helpers import inferences

Demo = tuple[DemoSummary, list[StoredEntry]]  # what the demo printed, and every entry it logged


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    folder = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{folder / 'demo.db'}"
    summary = run_demo(url, n=60, seed=3, spool_dir=str(folder / "spool"))
    store = open_store(url)
    try:
        entries = list(iter_entries(store, Query(limit=1000)))
    finally:
        store.close()
    return summary, entries


def test_demo_logs_n_predictions_from_both_versions(demo: Demo) -> None:
    """All n predictions are in the log, from both model versions, with a model digest and real outputs."""
    summary, entries = demo
    records = inferences(entries)
    assert len(records) == summary.inferences == 60
    assert {r.model.version for r in records} == set(VERSIONS)
    assert summary.by_version == {v: sum(r.model.version == v for r in records) for v in VERSIONS}
    assert all(r.model.digest and r.model.digest.startswith("sha256:") for r in records)
    ok = [r for r in records if r.status == "ok"]
    assert all(r.output is not None and r.latency_ms is not None for r in ok)


def test_demo_records_subjects_and_attributes(demo: Demo) -> None:
    """Every prediction carries a pseudonymous subject, a request id, an endpoint and a region."""
    _, entries = demo
    records = inferences(entries)
    assert all(re.fullmatch(r"subj-\d{4}", r.subject or "") for r in records)
    assert len({r.subject for r in records}) > 3
    assert all(r.request_id for r in records)
    assert {r.attributes["endpoint"] for r in records} == {"/v1/predict", "/v2/screen"}
    assert {r.attributes["region"] for r in records} == {"eu-west", "eu-central"}


def test_demo_logs_failures_as_errors(demo: Demo) -> None:
    """Malformed requests fail inside the model and are logged with status error and the exception."""
    summary, entries = demo
    failed = [r for r in inferences(entries) if r.status == "error"]
    assert len(failed) == summary.errors >= 2
    assert all(r.error is not None and r.error.type == "ValueError" for r in failed)
    assert summary.error_id in {r.id for r in failed}


def test_demo_logs_labels_and_human_overrides(demo: Demo) -> None:
    """Ground-truth labels arrive for a share of predictions and reviewer-7 overrides two of them."""
    summary, entries = demo
    ids = {r.id for r in inferences(entries)}
    feedback = [e.entry for e in entries if isinstance(e.entry, FeedbackEntry)]
    assert len(feedback) == summary.feedback
    assert all(f.inference_id in ids for f in feedback)
    labels = [f for f in feedback if f.label is not None]
    assert labels
    assert {f.label for f in labels} <= {"malignant", "benign"}
    overrides = [f for f in feedback if f.override is not None]
    assert len(overrides) == summary.overrides == 2
    assert {f.actor for f in overrides} == {REVIEWER}
    assert summary.override_id in {f.inference_id for f in overrides}


def test_next_steps_name_real_ids(demo: Demo) -> None:
    """The printed next steps use ids that are in the log and the log's own URL."""
    summary, entries = demo
    text = summary.next_steps()
    ids = {e.id for e in entries}
    shown = re.findall(r"show ([0-9a-f-]{36})", text)
    assert shown
    assert set(shown) <= ids
    assert f"--db {summary.db_url}" in text
    assert "export --format parquet" in text


def test_demo_spreads_the_stream_over_days_and_plants_a_drift(demo: Demo) -> None:
    """The records span the last DAYS days, and the canary's DRIFTED_FEATURE reads DRIFT_FACTOR times
    higher in the last day than before (the drift the demo's monitoring rule catches)."""
    summary, entries = demo
    records = inferences(entries)
    assert summary.started is not None
    assert summary.drift_since is not None
    span = max(r.ts for r in records) - min(r.ts for r in records)
    assert span > dt.timedelta(days=DAYS - 1)
    canary = [r for r in records if r.model.version == VERSIONS[1] and r.status == "ok"]
    before = [r.input[DRIFTED_FEATURE] for r in canary if r.ts < summary.drift_since]
    after = [r.input[DRIFTED_FEATURE] for r in canary if r.ts >= summary.drift_since]
    assert before
    assert after
    assert statistics.mean(after) / statistics.mean(before) > 1.3
    policy = tomllib.loads(demo_policy(summary))
    rule = policy["monitoring"]["alerts"][0]
    assert rule["metric"] == f"psi:{DRIFTED_FEATURE}"
    assert rule["reference"] in policy["monitoring"]["references"]
