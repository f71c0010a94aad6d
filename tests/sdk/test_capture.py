"""Capturing calls: the decorator (sync and async), the trace context manager, the sklearn wrapper."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import inferlog
from inferlog.sdk.client import Log
from tests.helpers import inferences


def _only(log: Log) -> inferlog.InferenceRecord:
    (stored,) = log.query(kind="inference").entries
    assert isinstance(stored.entry, inferlog.InferenceRecord)
    return stored.entry


def test_decorator_records_input_output_latency(log: Log, model: inferlog.Model) -> None:
    """A decorated call is one record with the argument as input and the result as output."""

    @log.inference(model=model)
    def predict(features: dict[str, int]) -> dict[str, float]:
        return {"score": features["income"] / 100000}

    assert predict({"income": 50000}) == {"score": 0.5}
    rec = _only(log)
    assert (rec.input, rec.output, rec.status) == ({"income": 50000}, {"score": 0.5}, "ok")
    assert rec.latency_ms is not None
    assert rec.latency_ms >= 0
    assert rec.model == model


def test_decorator_names_several_arguments(log: Log, model: inferlog.Model) -> None:
    """With several arguments the input maps parameter names to values; fixed fields are applied."""

    @log.inference(model=model, attributes={"endpoint": "/v1/score"})
    def predict(age: int, income: float, *, region: str = "eu") -> float:
        return 0.1

    predict(40, 1.5, region="us")
    rec = _only(log)
    assert rec.input == {"age": 40, "income": 1.5, "region": "us"}
    assert rec.attributes == {"endpoint": "/v1/score"}


def test_decorator_records_and_reraises_exceptions(log: Log, model: inferlog.Model) -> None:
    """A raising call is recorded as an error with type and message, and the exception propagates."""

    @log.inference(model=model)
    def predict(x: list[int]) -> float:
        raise ValueError(f"expected 4 features, got {len(x)}")

    with pytest.raises(ValueError, match="expected 4 features"):
        predict([1, 2])
    rec = _only(log)
    assert rec.status == "error"
    assert rec.error == inferlog.ErrorInfo("ValueError", "expected 4 features, got 2")
    assert rec.input == [1, 2]


def test_decorator_on_async_functions(log: Log, model: inferlog.Model) -> None:
    """An async function stays async and every awaited call is recorded, errors included."""

    @log.inference(model=model)
    async def predict(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise RuntimeError("negative")
        return x * 2

    async def main() -> None:
        assert await predict(3) == 6
        with pytest.raises(RuntimeError):
            await predict(-1)

    asyncio.run(main())
    records = inferences(log.query(kind="inference"))
    assert [(r.input, r.output, r.status) for r in records] == [(3, 6, "ok"), (-1, None, "error")]


def test_decorator_on_methods_skips_self(log: Log, model: inferlog.Model) -> None:
    """On a method, `self` is not part of the recorded input."""

    class Scorer:
        @log.inference(model=model)
        def predict(self, x: int) -> int:
            return x + 1

    Scorer().predict(1)
    assert _only(log).input == 1


def test_trace_context_manager(log: Log, model: inferlog.Model) -> None:
    """`with log.trace(...) as call` records what the block set, under an id known in advance."""
    with log.trace(model=model, input={"q": "hi"}, subject="s-9") as call:
        call.output = {"a": "hello"}
        call.attributes["tokens"] = 12
    rec = _only(log)
    assert rec.id == call.id
    assert (rec.input, rec.output, rec.subject, rec.attributes) == (
        {"q": "hi"}, {"a": "hello"}, "s-9", {"tokens": 12},
    )  # fmt: skip


def test_trace_records_exception(log: Log, model: inferlog.Model) -> None:
    """An exception inside the block is recorded as an error and not swallowed."""
    with pytest.raises(KeyError), log.trace(model=model, input=1):
        raise KeyError("feature")
    rec = _only(log)
    assert rec.status == "error"
    assert rec.error is not None
    assert rec.error.type == "KeyError"


def test_wrap_sklearn_estimator(log: Log) -> None:
    """inferlog.wrap logs predict and predict_proba of a real estimator, and passes other attributes through."""
    x, y = load_iris(return_X_y=True)
    clf = inferlog.wrap(LogisticRegression(max_iter=500).fit(x, y), log, inferlog.Model("iris", "1"))
    labels = clf.predict(x[:3])
    probabilities = clf.predict_proba(x[:2])
    assert list(clf.classes_) == [0, 1, 2]
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.array([[1.0, 2.0]]))  # wrong number of features
    records = inferences(log.query(kind="inference"))
    assert [r.attributes["method"] for r in records] == ["predict", "predict_proba", "predict"]
    assert records[0].output == labels.tolist()
    assert records[1].output == probabilities.tolist()
    assert records[0].input == x[:3].tolist()
    assert records[0].parameters["max_iter"] == 500
    assert records[2].status == "error"


def test_trace_accepts_a_given_start_time(log: Log, model: inferlog.Model) -> None:
    """A ts passed to trace() is the record's ts (for calls whose start was measured elsewhere)."""
    import datetime as dt

    start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with log.trace(model=model, ts=start) as call:
        call.output = 1
    assert _only(log).ts == start


def test_trace_is_typed_and_works_with_async_with(log: Log, model: inferlog.Model) -> None:
    """log.trace() is annotated as returning a Call (so type checkers see call.output), and `async with` records too."""
    import typing

    from inferlog.sdk.capture import Call

    assert typing.get_type_hints(Log.trace)["return"] is Call

    async def block() -> str:
        async with log.trace(model=model, input="q") as call:
            call.output = "a"
        return call.id

    rid = asyncio.run(block())
    rec = _only(log)
    assert (rec.id, rec.input, rec.output) == (rid, "q", "a")
