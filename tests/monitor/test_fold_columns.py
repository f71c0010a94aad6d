"""The column-wise fold gives exactly what folding value by value gives (the fold before it was columnar).

The oracle below is that earlier fold, kept verbatim in spirit: one entry at a time, one value at a time.
Random batches mix what makes the column paths fall back: rows of differing fields, NaN, infinities,
nulls, booleans, long strings, more distinct values than a bucket keeps, nested objects, OIP tensors,
batches of rows, and outputs of every shape; under policies that narrow the features, force one to be
categorical, fix the task, and mask a protected field.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import random
from typing import Any

import pytest

from inferlog.monitor import features as ft
from inferlog.monitor import windows
from inferlog.monitor.engine import Monitor, _minute
from inferlog.monitor.fold import Folder, Gathered, Masker
from inferlog.monitor.policy import FeatureConfig, MonitoringPolicy
from inferlog.monitor.sketch import BucketState, finite
from inferlog.privacy.policy import parse_policy
from inferlog.store import Store
from inferlog.testing import make_record, prepare

SYSTEM = "credit"


def _oracle_rows(folder: Folder, state: BucketState, rows: list[dict[str, Any]]) -> None:
    config = folder.policy.features_of(SYSTEM)
    wanted = set(config.features) if config.features is not None else None
    state.rows += len(rows)
    for row in rows:
        if wanted is not None:
            names: Any = sorted(wanted.intersection(row))
        elif len(row) > ft.MAX_FEATURES:
            names = sorted(row)[: ft.MAX_FEATURES]
        else:
            names = row
        for name in names:
            kind, value = ft.classify(row[name])
            if kind == "skip":
                continue
            feature = state.feature(name)
            if kind == "num" and name not in config.categorical:
                feature.add_number(value)
            elif kind == "null":
                feature.nulls += 1
            else:
                text = ft.class_label(value) if kind == "num" else value
                if text is None:
                    continue
                protected = folder.masker.protects(SYSTEM, "input", name)
                feature.cats.add(folder.masker.mask(text) if protected else text)


def _oracle(folder: Folder, entries: list[tuple[float | None, Any, Any]]) -> BucketState:
    """Fold (latency, input, output) entries of one bucket one value at a time."""
    state = BucketState()
    task = folder.policy.features_of(SYSTEM).task
    masked = folder.masker.protects(SYSTEM, "output")
    for latency, input_, output in entries:
        if latency is not None:
            state.add_latency(latency)
        if input_ is not None:
            _oracle_rows(folder, state, ft.rows_of(input_))
        if output is None:
            continue
        for value in ft.predictions(output):
            if (
                task != "classification"
                and finite(value)
                and (task == "regression" or isinstance(value, float))
            ):
                state.add_output_number(float(value))
            elif task != "regression":
                label = ft.class_label(value)
                if label is not None:
                    state.out_cats.add(folder.masker.mask(label) if masked else label)
    return state


def _sketch_values(sketch: Any) -> list[float]:
    """A sketch's values, sorted (exact: these sketches hold fewer values than KLL's k)."""
    if sketch is None:
        return []
    n = int(sketch.n)
    assert not sketch.is_estimation_mode()
    return [float(sketch.get_quantile((i + 0.5) / n)) for i in range(n)]


def _summary(state: BucketState) -> tuple[Any, ...]:
    features = {
        name: (sorted(map(float, f.pending)), f.numbers, f.cats.counts, f.cats.other, f.nulls)
        for name, f in state.features.items()
    }
    return (
        state.rows, features, state.out_cats.counts, state.out_cats.other, _sketch_values(state.out_num),
        _sketch_values(state.latency),
    )  # fmt: skip


def _value(rng: random.Random, name: str, clean: bool = False) -> Any:
    pick = 1.0 if clean else rng.random()
    if name.startswith("n"):
        if pick < 0.03:
            return rng.choice([math.nan, math.inf, -math.inf, None, "12", True])
        return rng.gauss(0, 10) if pick < 0.8 or clean else rng.randrange(-5, 50)
    if name == "wide":  # more distinct values than a bucket keeps
        return f"w{rng.randrange(400)}"
    if pick < 0.03:
        return rng.choice([None, "x" * 80, 3, False])
    return rng.choice(["north", "south", "east", "west"])


def _input(rng: random.Random, shape: str) -> Any:
    names = ["n0", "n1", "n2", "region", "wide", "job"]
    if shape == "ragged":
        names = rng.sample(names, rng.randrange(1, len(names)))
    if shape == "clean":  # plain columns: the batch-wide paths
        return {name: _value(rng, name, clean=True) for name in names}
    row = {name: _value(rng, name) for name in names}
    if shape == "nested" and rng.random() < 0.3:
        row["applicant"] = {"age": rng.randrange(18, 90), "tags": [1, 2]}
    if shape == "batch" and rng.random() < 0.3:
        return [row, {name: _value(rng, name) for name in names}]
    if shape == "tensors" and rng.random() < 0.3:
        return {
            "inputs": [
                {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [rng.random() for _ in range(4)]}
            ]
        }
    if rng.random() < 0.02:
        return rng.choice([{}, "free text", None])
    return row


def _output(rng: random.Random, shape: str) -> Any:
    if shape == "ints":
        return {"prediction": rng.choice([0, 1, 2])}
    if shape == "floats":
        return {"score": rng.random() if rng.random() > 0.02 else math.nan}
    if shape == "labels":
        return {"label": rng.choice(["approve", "deny", "y" * 70])}
    return rng.choice(
        [{"prediction": 1}, {"prediction": 0.25}, [0.1, 0.9], {"outputs": [{"name": "o", "data": [1, 2]}]}, 3, None,
         {"prediction": True}, {"a": 1, "b": 2}]
    )  # fmt: skip


POLICIES = {
    "inferred": (MonitoringPolicy(), ""),
    "narrowed": (
        MonitoringPolicy(
            systems={SYSTEM: FeatureConfig(features=("n0", "job", "wide"), categorical=("n0",))}
        ),
        "",
    ),
    "regression": (MonitoringPolicy(systems={SYSTEM: FeatureConfig(task="regression")}), ""),
    "classification, masked": (
        MonitoringPolicy(systems={SYSTEM: FeatureConfig(task="classification")}),
        '[keystore]\npath = "keys.db"\n[defaults]\npseudonymize = ["input.region", "output"]\n',
    ),
}


@pytest.mark.parametrize("policy_name", list(POLICIES))
@pytest.mark.parametrize("input_shape", ["clean", "flat", "ragged", "nested", "batch", "tensors"])
@pytest.mark.parametrize("output_shape", ["ints", "floats", "labels", "mixed"])
def test_the_column_wise_fold_equals_the_value_by_value_fold(
    policy_name: str, input_shape: str, output_shape: str
) -> None:
    """Every bucket of a random batch comes out exactly as folding its entries value by value makes it."""
    policy, privacy = POLICIES[policy_name]
    folder = Folder(policy, Masker(parse_policy(privacy) if privacy else None, b"k" * 32))
    rng = random.Random(f"{policy_name}/{input_shape}/{output_shape}")
    buckets = [
        [
            (rng.choice([None, rng.random() * 30]), _input(rng, input_shape), _output(rng, output_shape))
            for _ in range(rng.choice([0, 1, 3, 40, 90]))
        ]
        for _ in range(12)
    ]
    gathered = []
    for entries in buckets:
        into = Gathered(SYSTEM)
        for latency, input_, output in entries:
            if latency is not None:
                into.latencies.append(latency)
            if input_ is not None:
                into.inputs.append(input_)
            if output is not None:
                into.outputs.append(output)
        gathered.append(into)
    folder.flush_all(gathered)
    for entries, into in zip(buckets, gathered, strict=True):
        assert _summary(into.state) == _summary(_oracle(folder, entries))
    one_by_one = []
    for entries in buckets:  # flush (one bucket) agrees too
        into = Gathered(SYSTEM)
        into.latencies = [e[0] for e in entries if e[0] is not None]
        into.inputs = [e[1] for e in entries if e[1] is not None]
        into.outputs = [e[2] for e in entries if e[2] is not None]
        one_by_one.append(_summary(folder.flush(into)))
    assert one_by_one == [_summary(into.state) for into in gathered]


@pytest.mark.parametrize(
    "ts",
    [
        dt.datetime(2026, 3, 1, 12, 0, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 12, 1, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, 58, 250_000, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, tzinfo=dt.UTC),
    ],
)
def test_the_minute_from_the_time_column_is_the_minute_of_the_entrys_time(ts: dt.datetime) -> None:
    """The fold buckets by the store's microseconds as the refold does by the entry's datetime."""
    micros = (ts - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert _minute(micros) == windows.floor(windows.seconds(ts), 60)


def test_a_fold_leaves_the_garbage_collector_as_it_found_it(store: Store) -> None:
    """The fold pauses the collector per batch; enabled before means enabled after, and off stays off."""
    store.append(prepare(*[make_record(system=SYSTEM, input={"x": float(i)}) for i in range(30)]))
    monitor = Monitor(store, batch=7)
    assert gc.isenabled()
    assert monitor.catch_up(limit=10) == 10
    assert gc.isenabled()
    gc.disable()
    try:
        assert monitor.catch_up() == 20
        assert not gc.isenabled()
    finally:
        gc.enable()
