"""``inferlog.model_schemas``: model versions' input/output schemas as ``model.schema`` admin entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferlog.errors import RecordInvalid
from inferlog.model_schemas import (
    MAX_FIELDS,
    MODEL_SCHEMA,
    check_schema,
    model_schemas,
    oip_schema,
    record_schema,
    schema_entry_id,
)
from inferlog.record.model import AdminEntry
from inferlog.store import Store
from inferlog.store.base import Query
from tests.helpers import backend_store

SCHEMA: dict[str, Any] = {
    "inputs": [{"name": "age", "datatype": "INT64"}, {"name": "income", "datatype": "FP64", "shape": [-1]}],
    "outputs": [{"name": "approved", "datatype": "BOOL"}],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh log on each backend."""
    opened = backend_store(request, tmp_path / "log.db")
    yield opened
    opened.close()


def _admin(store: Store) -> list[AdminEntry]:
    return [s.entry for s in store.query(Query(kind="admin")) if isinstance(s.entry, AdminEntry)]


def test_a_schema_round_trips_and_the_same_one_is_not_written_twice(store: Store) -> None:
    """A schema is one ``model.schema`` entry (system ``*``, deterministic id); recording it again writes nothing."""
    made = record_schema(store, "credit", "1", SCHEMA, source="user", actor="ops")
    again = record_schema(store, "credit", "1", SCHEMA, source="user", actor="someone else")
    (entry,) = _admin(store)
    assert (entry.action, entry.system, entry.actor) == (MODEL_SCHEMA, "*", "ops")
    assert entry.id == made.entry_id == again.entry_id == schema_entry_id("credit", "1", made.sha256)
    assert again.actor == "ops"
    (read,) = model_schemas(store)
    assert (read.name, read.version, read.source, read.changed) == ("credit", "1", "user", False)
    assert read.inputs == SCHEMA["inputs"]
    assert read.outputs == SCHEMA["outputs"]
    assert read.sha256 == made.sha256


def test_a_changed_schema_is_kept_and_flagged(store: Store) -> None:
    """Another schema for the same version from the same source is a second entry; the latest shows, flagged."""
    record_schema(store, "credit", "1", SCHEMA, source="user", actor="ops")
    changed = {**SCHEMA, "inputs": [{"name": "age", "datatype": "FP32"}]}
    record_schema(store, "credit", "1", changed, source="user", actor="ops")
    record_schema(store, "credit", "2", SCHEMA, source="user", actor="ops")
    assert len(_admin(store)) == 3
    one, two = model_schemas(store)
    assert (one.version, one.changed, one.inputs) == ("1", True, [{"name": "age", "datatype": "FP32"}])
    assert (two.version, two.changed) == ("2", False)


def test_schemas_from_different_sources_are_not_a_change(tmp_path: Path) -> None:
    """The server's metadata and a person may describe a version differently: that alone is not flagged."""
    from inferlog.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        record_schema(store, "iris", "1", SCHEMA, source="user", actor="ops")
        record_schema(store, "iris", "1", {"inputs": [{"name": "x"}]}, source="oip", actor="proxy")
        (read,) = model_schemas(store)
        assert (read.source, read.changed) == ("oip", False)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ([], "schema"),
        ({"inputs": [], "outputs": []}, "schema"),
        ({"inputs": [], "extra": 1}, "schema"),
        ({"inputs": {"name": "x"}}, "schema.inputs"),
        ({"inputs": [{"name": ""}]}, "schema.inputs[0].name"),
        ({"inputs": [{"name": "a"}, {"name": 3}]}, "schema.inputs[1].name"),
        ({"outputs": ["y"]}, "schema.outputs[0]"),
        ({"outputs": [{"name": "y", "datatype": 5}]}, "schema.outputs[0].datatype"),
        ({"outputs": [{"name": "y", "shape": ["n"]}]}, "schema.outputs[0].shape"),
        ({"outputs": [{"name": "y", "unit": "kg"}]}, "schema.outputs[0]"),
        ({"inputs": [{"name": "x"}] * (MAX_FIELDS + 1)}, "schema.inputs"),
    ],
)
def test_a_bad_schema_is_refused_naming_the_field(schema: Any, field: str) -> None:
    """Each malformed schema is a RecordInvalid that names the offending field."""
    with pytest.raises(RecordInvalid) as caught:
        check_schema(schema)
    assert caught.value.field == field


def test_bad_names_and_sources_are_refused_before_writing(tmp_path: Path) -> None:
    """An empty version or an unknown source is refused, and nothing is written."""
    from inferlog.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        with pytest.raises(RecordInvalid) as caught:
            record_schema(store, "credit", "", SCHEMA, source="user", actor=None)
        assert caught.value.field == "version"
        with pytest.raises(RecordInvalid) as caught:
            record_schema(store, "credit", "1", SCHEMA, source="guess", actor=None)
        assert caught.value.field == "source"
        assert _admin(store) == []
    finally:
        store.close()


def test_oip_metadata_gives_its_tensors_without_extras() -> None:
    """An OIP metadata answer's inputs/outputs become the schema (name, datatype, shape only); none without them."""
    meta = {
        "name": "iris",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4], "parameters": {"content_type": "np"}}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
    }
    assert oip_schema(meta) == {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
    }
    assert oip_schema({"name": "iris", "platform": "sklearn"}) is None


def test_an_estimator_fitted_on_an_array_gives_positional_names() -> None:
    """Without feature names, inputs are ``x0``.. from ``n_features_in_``; a regressor's output has no datatype."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from inferlog.model_schemas import sklearn_schema

    fitted = LinearRegression().fit(np.arange(6.0).reshape(3, 2), [1.0, 2.0, 3.0])
    assert sklearn_schema(fitted) == {
        "inputs": [{"name": "x0"}, {"name": "x1"}],
        "outputs": [{"name": "predict"}],
    }
