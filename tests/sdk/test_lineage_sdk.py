"""Lineage in the SDK: ``Log.register_model``, ``record()`` attaching it, and the estimator digest ``wrap`` uses."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder

import inferlog
from inferlog.errors import ModelConflict, UsageError
from inferlog.sdk.client import Log
from inferlog.sdk.integrations.sklearn import fitted_digest
from inferlog.sdk.transport import CapturingTransport
from tests.helpers import inferences

X, Y = load_iris(return_X_y=True)
DIGEST = "sha256:" + "1" * 64


def _forest(rows: int = 150, seed: int = 0) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=5, random_state=seed).fit(X[:rows], Y[:rows])


def test_the_same_fit_gives_the_same_digest_and_another_fit_another() -> None:
    """Two identical fits hash alike (also after a pickle round trip); other data, parameters or classes differ."""
    first, second = _forest(), _forest()
    digest = fitted_digest(first)
    assert digest is not None
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert fitted_digest(second) == digest
    assert fitted_digest(pickle.loads(pickle.dumps(first))) == digest  # noqa: S301 - our own bytes
    assert fitted_digest(_forest(rows=120)) != digest
    assert fitted_digest(_forest(seed=1)) != digest
    linear = LogisticRegression(max_iter=500).fit(X, Y)
    assert fitted_digest(LogisticRegression(max_iter=500).fit(X, Y)) == fitted_digest(linear)
    assert fitted_digest(LogisticRegression(max_iter=501).fit(X, Y)) != fitted_digest(linear)


def test_object_arrays_are_hashed_by_value_and_unfitted_estimators_have_no_digest() -> None:
    """String classes (an object array) hash by their values, not their addresses; an unfitted estimator has none."""
    labels = ["cat", "dog", "cat"]
    assert fitted_digest(LabelEncoder().fit(np.array(labels, dtype=object))) == fitted_digest(
        LabelEncoder().fit(np.array([str(s) for s in labels], dtype=object))
    )
    assert fitted_digest(LabelEncoder().fit(["a", "b"])) != fitted_digest(LabelEncoder().fit(["a", "c"]))
    assert fitted_digest(LogisticRegression()) is None


def test_wrap_records_the_digest_and_the_registered_version(tmp_path: Path) -> None:
    """Wrapped without a model, records carry the fitted digest; once that digest is registered, its name, version and URI."""
    forest = _forest()
    digest = fitted_digest(forest)
    assert digest is not None
    with inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="iris", spool_dir=tmp_path / "spool"
    ) as log:
        inferlog.wrap(forest, log).predict(X[:1])
        log.register_model("iris-forest", "7", digest=digest, uri="mlflow://runs/forest-7")
        inferlog.wrap(forest, log).predict(X[:1])
        log.flush()
        before, after = inferences(log.query(kind="inference"))
    assert (before.model.name, before.model.version, before.model.digest) == (
        "RandomForestClassifier",
        "unversioned",
        digest,
    )
    assert (after.model.name, after.model.version) == ("iris-forest", "7")
    assert (after.model.digest, after.model.uri, after.model.provider) == (
        digest,
        "mlflow://runs/forest-7",
        "sklearn",
    )


def test_register_model_through_the_log(tmp_path: Path) -> None:
    """``log.register_model`` keeps the card by hash and text, lists the version, and refuses a second digest."""
    card = tmp_path / "card.md"
    card.write_text("# iris\n")
    with inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="iris", spool_dir=tmp_path / "spool"
    ) as log:
        made = log.register_model("iris", "1", digest=DIGEST, card=card, actor="ops")
        assert made.card is not None
        assert (made.card["ref"], made.card["text"]) == ("card.md", "# iris\n")
        assert [(r.name, r.version, r.actor) for r in log.registered_models()] == [("iris", "1", "ops")]
        with pytest.raises(ModelConflict):
            log.register_model("iris", "1", digest="sha256:" + "2" * 64)
        log.record(model=inferlog.Model("iris", "1"), output=1)
        log.flush()
        (rec,) = inferences(log.query(kind="inference"))
    assert rec.model.digest == DIGEST


def test_a_log_without_a_store_or_server_cannot_register(tmp_path: Path) -> None:
    """A Log writing to a test transport attaches nothing and says plainly that it has nowhere to register."""
    with Log(CapturingTransport(), system="iris", spool_dir=tmp_path / "spool") as log:
        assert log.lineage is None
        with pytest.raises(UsageError, match="neither a store nor a server"):
            log.register_model("iris", "1", digest=DIGEST)
        log.record(model=inferlog.Model("iris", "1"), output=1)
