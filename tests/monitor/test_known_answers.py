"""Monitoring with known answers: a planted shift is found where it was planted; scores equal scikit-learn's."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from inferlog.errors import BadParameter, NotFound
from inferlog.monitor.engine import Monitor
from inferlog.monitor.policy import FeatureConfig, MonitoringPolicy, ReferenceSpec
from inferlog.monitor.source import MetricSource, Scope
from inferlog.record import FeedbackEntry, Model, uuid7
from inferlog.store import Store
from inferlog.testing import make_record, prepare

T0 = dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
MODEL = Model(name="scorer", version="3")
SCOPE = Scope("credit")


def _stream(rng: random.Random, start: dt.datetime, n: int, *, income_mean: float = 50.0,
            jobs: str = "abc") -> list[Any]:  # fmt: skip
    return [
        make_record(
            system="credit",
            model=MODEL,
            ts=start + dt.timedelta(seconds=i * 60),
            input={
                "income": rng.gauss(income_mean, 10),
                "age": rng.gauss(40, 8),
                "job": rng.choice(jobs),
                "region": rng.choice(["north", "south"]),
            },
            output={"prediction": rng.choice([0, 1])},
            latency_ms=1 + rng.random() * 9,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("planted", ["income", "job"])
def test_a_planted_shift_is_flagged_on_that_feature_only(any_store: Store, planted: str) -> None:
    """Day 2 shifts one feature (numeric or categorical); drift against day 1 flags it and nothing else."""
    rng = random.Random(7)
    any_store.append(prepare(*_stream(rng, T0, 1440)))
    shifted = {"income_mean": 65.0} if planted == "income" else {"jobs": "abcccccc"}
    any_store.append(prepare(*_stream(rng, T0 + DAY, 1440, **shifted)))
    monitor = Monitor(any_store)
    monitor.catch_up()
    reference = f"{T0.isoformat()}/{(T0 + DAY).isoformat()}"
    report = monitor.drift(SCOPE, reference, T0 + DAY, T0 + 2 * DAY)
    assert report.drifted == [planted]
    assert report.feature(planted).severity == "major"
    assert {f.feature for f in report.features} == {"age", "income", "job", "region"}
    for feature in report.features:
        if feature.feature != planted:
            assert feature.psi is not None
            assert feature.psi < 0.1, feature
    same_day = monitor.drift(SCOPE, reference, T0, T0 + DAY)
    assert same_day.drifted == []
    assert monitor.metric(
        f"psi:{planted}", SCOPE, T0 + DAY, T0 + 2 * DAY, reference=reference
    ) == pytest.approx(report.feature(planted).psi)


def test_a_reference_data_set_flags_the_shift_and_survives_a_new_monitor(store: Store, tmp_path: Any) -> None:
    """A Parquet reference (kept in the store) against a shifted stream; CSV and DataFrame give the same profile."""
    import pandas as pd

    rng = random.Random(3)
    frame = pd.DataFrame(
        {"income": [rng.gauss(50, 10) for _ in range(2000)], "age": [rng.gauss(40, 8) for _ in range(2000)],
         "job": [rng.choice("abc") for _ in range(2000)], "region": [rng.choice(["north", "south"]) for _ in range(2000)]}
    )  # fmt: skip
    frame.to_parquet(tmp_path / "ref.parquet")
    frame.to_csv(tmp_path / "ref.csv", index=False)
    Monitor(store).add_reference("q3", tmp_path / "ref.parquet", system="credit")
    store.append(prepare(*_stream(rng, T0, 1440, income_mean=70.0)))
    monitor = Monitor(store)  # a new monitor (as after a restart) finds the kept reference
    monitor.catch_up()
    assert monitor.drift(SCOPE, "q3", T0, T0 + DAY).drifted == ["income"]
    assert [r.name for r in monitor.references.list()] == ["q3"]
    csv = monitor.add_reference("q3csv", tmp_path / "ref.csv", system="credit")
    df = monitor.add_reference("q3df", frame, system="credit")
    assert csv.rows == df.rows == 2000
    psi = [
        monitor.metric("psi:income", SCOPE, T0, T0 + DAY, reference=name) for name in ("q3", "q3csv", "q3df")
    ]
    assert all(value is not None and value > 0.2 for value in psi), psi
    # The three profiles are of the same rows: same counts, medians within the sketch's error.
    profiles = [monitor.references.state(name, SCOPE, monitor.window) for name in ("q3", "q3csv", "q3df")]
    assert {p.features["job"].cats.counts == profiles[0].features["job"].cats.counts for p in profiles} == {
        True
    }
    sketches = [p.features["income"].num for p in profiles]
    medians = [sketch.get_quantile(0.5) for sketch in sketches if sketch is not None]
    assert medians == pytest.approx([float(frame["income"].median())] * 3, rel=0.02)
    with pytest.raises(NotFound):
        monitor.drift(SCOPE, "nope", T0, T0 + DAY)


def test_a_policy_period_reference_and_forced_categorical(store: Store) -> None:
    """A [monitoring.references] period works by name; a feature the policy calls categorical is counted by value."""
    rng = random.Random(5)
    records = _stream(rng, T0, 600)
    store.append(prepare(*records))
    policy = MonitoringPolicy(
        systems={"credit": FeatureConfig(features=("income", "job"), categorical=("job",))},
        references={"first": ReferenceSpec("first", "credit", since=T0, until=T0 + dt.timedelta(hours=5))},
    )
    monitor = Monitor(store, policy)
    monitor.catch_up()
    report = monitor.drift(SCOPE, "first", T0 + dt.timedelta(hours=5), T0 + DAY)
    assert [f.feature for f in report.features] == ["income", "job"]  # age and region are not features
    assert report.feature("job").type == "categorical"
    assert report.drifted == []


def test_missing_values_and_type_changes_are_rates(store: Store) -> None:
    """A feature absent in a quarter of the rows and a string in a tenth of the rest shows exactly that."""
    records = []
    for i in range(400):
        value: Any = None if i % 4 == 0 else ("n/a" if i % 10 == 1 else float(i))
        payload = {"x": 1.0} if value is None and i % 8 == 0 else {"x": 1.0, "y": value}
        records.append(
            make_record(system="credit", model=MODEL, ts=T0 + dt.timedelta(seconds=i), input=payload)
        )
    store.append(prepare(*records))
    monitor = Monitor(store)
    monitor.catch_up()
    drift = monitor.drift(SCOPE, f"{T0.isoformat()}/{(T0 + DAY).isoformat()}", T0, T0 + DAY).feature("y")
    assert drift.missing_rate == pytest.approx(100 / 400)
    strings = sum(1 for i in range(400) if i % 4 and i % 10 == 1)
    assert drift.type_change_rate == pytest.approx(strings / 300)
    assert monitor.metric("missing_rate:y", SCOPE, T0, T0 + DAY) == pytest.approx(0.25)


def test_oip_tensors_are_features_by_name(store: Store) -> None:
    """An OIP request's [n, k] tensor gives features name[0..k-1] over n rows; outputs count as classes."""
    rng = random.Random(1)
    records = [
        make_record(
            system="iris",
            model=MODEL,
            ts=T0 + dt.timedelta(seconds=i),
            source="oip",
            input={
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [2, 3],
                        "datatype": "FP64",
                        "data": [rng.random() for _ in range(6)],
                    },
                    {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]},
                ]
            },
            output={
                "model_name": "iris",
                "outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 2]}],
            },
        )
        for i in range(50)
    ]
    store.append(prepare(*records))
    monitor = Monitor(store)
    monitor.catch_up()
    state = monitor.window(Scope("iris"), T0, T0 + DAY)
    assert sorted(state.features) == ["flag", "input-0[0]", "input-0[1]", "input-0[2]"]
    assert state.rows == 100
    assert state.features["input-0[1]"].numbers == 100
    assert state.features["flag"].cats.counts == {"true": 50, "false": 50}
    assert state.out_cats.counts == {"1": 50, "2": 50}


def _labelled(rng: random.Random, n: int, classes: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    records, feedback, pairs = [], [], []
    for i in range(n):
        predicted = rng.choice(classes)
        label = predicted if rng.random() < 0.6 else rng.choice(classes)
        record = make_record(system="credit", model=MODEL, ts=T0 + dt.timedelta(seconds=i * 30),
                             input={"x": float(i)}, output={"prediction": predicted})  # fmt: skip
        records.append(record)
        feedback.append(
            FeedbackEntry(
                id=uuid7(),
                system="credit",
                ts=record.ts + dt.timedelta(seconds=100 + i),
                inference_id=record.id,
                label=label,
            )
        )
        pairs.append((label, predicted))
    return records, feedback, pairs


def test_classification_scores_equal_scikit_learns(any_store: Store) -> None:
    """Accuracy and macro precision, recall and F1 from feedback equal scikit-learn's on the same pairs."""
    rng = random.Random(11)
    records, feedback, pairs = _labelled(rng, 500, ["cat", "dog", "bird", "fish"])
    any_store.append(prepare(*records))
    any_store.append(prepare(*feedback))
    monitor = Monitor(any_store)
    monitor.catch_up()
    source: MetricSource = monitor
    truth = [label for label, _ in pairs]
    guess = [p for _, p in pairs]
    until = T0 + DAY
    assert source.metric("accuracy", SCOPE, T0, until) == pytest.approx(accuracy_score(truth, guess))
    assert source.metric("precision", SCOPE, T0, until) == pytest.approx(
        precision_score(truth, guess, average="macro", zero_division=0)
    )
    assert source.metric("recall", SCOPE, T0, until) == pytest.approx(
        recall_score(truth, guess, average="macro", zero_division=0)
    )
    assert source.metric("f1", SCOPE, T0, until) == pytest.approx(
        f1_score(truth, guess, average="macro", zero_division=0)
    )
    # The first hour alone: the pairs of the inferences made in it (120 at one every 30 s).
    hour = pairs[:120]
    assert monitor.metric("accuracy", SCOPE, T0, T0 + dt.timedelta(hours=1)) == pytest.approx(
        accuracy_score([t for t, _ in hour], [g for _, g in hour])
    )
    delay = monitor.metric("label_delay_p50", SCOPE, T0, until)
    assert delay == pytest.approx(float(np.median([100 + i for i in range(500)])), abs=5)


def test_regression_errors_equal_numpys(store: Store) -> None:
    """MAE and RMSE from feedback equal numpy's on the same (label, prediction) pairs."""
    rng = random.Random(2)
    records, feedback, labels, preds = [], [], [], []
    for i in range(300):
        predicted = rng.gauss(100, 20)
        label = predicted + rng.gauss(0, 5)
        record = make_record(system="credit", model=MODEL, ts=T0 + dt.timedelta(seconds=i),
                             input={"x": 1.0}, output=predicted)  # fmt: skip
        records.append(record)
        feedback.append(
            FeedbackEntry(id=uuid7(), system="credit", ts=record.ts, inference_id=record.id, label=label)
        )
        labels.append(label)
        preds.append(predicted)
    store.append(prepare(*records, *feedback))
    monitor = Monitor(store)
    monitor.catch_up()
    errors = np.array(labels) - np.array(preds)
    assert monitor.metric("mae", SCOPE, T0, T0 + DAY) == pytest.approx(float(np.mean(np.abs(errors))))
    assert monitor.metric("rmse", SCOPE, T0, T0 + DAY) == pytest.approx(math.sqrt(float(np.mean(errors**2))))
    assert monitor.metric("accuracy", SCOPE, T0, T0 + DAY) is None  # fractional pairs are no classes


def test_override_rate_and_volume_series(store: Store) -> None:
    """Reviews that override count against those that confirm; a series counts per bucket, None where empty."""
    records = [make_record(system="credit", model=MODEL, ts=T0 + dt.timedelta(minutes=i), output={"prediction": 1},
                           status="error" if i == 3 else "ok") for i in range(4)]  # fmt: skip
    reviews = [
        FeedbackEntry(id=uuid7(), system="credit", ts=T0 + DAY, inference_id=records[0].id, override=0),
        FeedbackEntry(id=uuid7(), system="credit", ts=T0 + DAY, inference_id=records[1].id, override=1),
        FeedbackEntry(id=uuid7(), system="credit", ts=T0 + DAY, inference_id=records[2].id, verification="confirmed",
                      actor="reviewer-1"),
    ]  # fmt: skip
    store.append(prepare(*records, *reviews))
    monitor = Monitor(store)
    monitor.catch_up()
    assert monitor.metric("override_rate", SCOPE, T0, T0 + DAY) == pytest.approx(1 / 3)
    assert monitor.metric("error_rate", SCOPE, T0, T0 + DAY) == pytest.approx(1 / 4)
    series = monitor.series("volume", SCOPE, "minute", T0, T0 + dt.timedelta(minutes=6))
    assert [v for _, v in series] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert series[0][0] == T0
    errors = monitor.series("error_rate", SCOPE, "hour", T0, T0 + dt.timedelta(hours=2))
    assert [v for _, v in errors] == [0.25, None]
    assert monitor.metric("accuracy", SCOPE, T0, T0 + DAY) is None  # no labels: no data, not 0
    assert monitor.metric("volume", Scope("other"), T0, T0 + DAY) == 0.0


def test_bad_metric_names_and_missing_references_are_refused(store: Store) -> None:
    """An unknown metric, a drift metric without feature or reference, a bad bucket: BadParameter."""
    monitor = Monitor(store)
    for name, reference in (("nonsense", None), ("psi", "x"), ("psi:income", None)):
        with pytest.raises(BadParameter):
            monitor.metric(name, SCOPE, T0, T0 + DAY, reference=reference)
    with pytest.raises(BadParameter):
        monitor.series("volume", SCOPE, "week", T0, T0 + DAY)
    with pytest.raises(BadParameter):
        monitor.drift(SCOPE, "2026-01-01/nonsense", T0, T0 + DAY)
