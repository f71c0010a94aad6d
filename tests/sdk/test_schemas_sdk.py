"""Model schemas in the SDK: ``wrap`` records a fitted estimator's, ``log.register_model(schema=...)`` a user's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import inferlog
from inferlog.errors import RecordInvalid
from inferlog.model_schemas import sklearn_schema
from inferlog.sdk.integrations.sklearn import fitted_digest

DIGEST = "sha256:" + "3" * 64


def _frame_fit() -> tuple[LogisticRegression, pd.DataFrame]:
    frame = load_iris(as_frame=True).frame
    x = frame.drop(columns="target")
    return LogisticRegression(max_iter=500).fit(x, frame["target"]), x


def test_an_estimator_fitted_on_a_frame_gives_its_feature_names() -> None:
    """The schema's inputs are the DataFrame's columns; its output carries the classes' dtype."""
    clf, x = _frame_fit()
    schema = sklearn_schema(clf)
    assert schema is not None
    assert [f["name"] for f in schema["inputs"]] == list(x.columns)
    assert schema["outputs"] == [{"name": "predict", "datatype": "int64", "shape": [-1]}]
    assert sklearn_schema(LogisticRegression()) is None  # not fitted: nothing to say


def test_wrap_records_the_schema_of_a_versioned_model_once(tmp_path: Path) -> None:
    """Wrapping a registered estimator (twice) writes one ``sklearn`` schema of its version; unversioned, none."""
    clf, x = _frame_fit()
    with inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="iris", spool_dir=tmp_path / "spool"
    ) as log:
        inferlog.wrap(clf, log).predict(x[:1])
        assert log.model_schemas() == []  # unversioned: no version to hold a schema
        digest = fitted_digest(clf)
        assert digest is not None
        log.register_model("iris-lr", "3", digest=digest)
        inferlog.wrap(clf, log).predict(x[:1])
        inferlog.wrap(clf, log).predict(x[:1])
        (schema,) = log.model_schemas()
        assert (schema.name, schema.version, schema.source) == ("iris-lr", "3", "sklearn")
        assert [f["name"] for f in schema.inputs] == list(x.columns)
        assert len(log.query(kind="admin", limit=100).entries) == 2  # the registration and the schema


def test_register_model_with_a_schema(tmp_path: Path) -> None:
    """``register_model(schema=...)`` records it as the user's; a bad one is refused before anything is written."""
    with inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="iris", spool_dir=tmp_path / "spool"
    ) as log:
        with pytest.raises(RecordInvalid, match=r"schema\.inputs"):
            log.register_model("iris", "1", digest=DIGEST, schema={"inputs": "x"})
        assert log.registered_models() == []
        log.register_model("iris", "1", digest=DIGEST, schema={"inputs": [{"name": "x"}]}, actor="ops")
        (schema,) = log.model_schemas()
        assert (schema.source, schema.actor, schema.inputs) == ("user", "ops", [{"name": "x"}])


def test_a_schema_capture_path_cannot_record_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``capture_schema`` with a malformed schema logs a warning naming the model and raises nothing."""
    with inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="iris", spool_dir=tmp_path / "spool"
    ) as log:
        log.capture_schema(inferlog.Model("iris", "1"), {"inputs": [{"name": ""}]}, "oip")
        assert log.model_schemas() == []
    assert "the schema of iris 1 was not recorded" in caplog.text
