"""Lineage in the SDK: ``Log.register_model``, ``record()`` attaching it, and the estimator digest ``wrap`` uses."""

from __future__ import annotations

import functools
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, StandardScaler

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


def _clip(x: Any) -> Any:
    return np.clip(x, 0.0, 10.0)


_PIPELINE_SCRIPT = """
import functools, numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from inferlog.sdk.integrations.sklearn import fitted_digest
X, Y = load_iris(return_X_y=True)
steps = [FunctionTransformer(func=np.log1p), FunctionTransformer(func=functools.partial(np.clip, a_min=0, a_max=9)),
         StandardScaler(), LogisticRegression(max_iter=500)]
print(fitted_digest(make_pipeline(*steps).fit(X, Y)))
"""


def test_a_pipeline_with_function_params_is_wrapped_and_digested_the_same_in_every_process(
    tmp_path: Path,
) -> None:
    """A Pipeline gets a digest (from its fitted steps); function-valued params (FunctionTransformer's func)
    neither fail wrap() nor make the digest depend on memory addresses: another process gets the same."""
    steps = [
        FunctionTransformer(func=np.log1p),
        FunctionTransformer(func=functools.partial(np.clip, a_min=0, a_max=9)),
        StandardScaler(),
        LogisticRegression(max_iter=500),
    ]
    pipeline = make_pipeline(*steps).fit(X, Y)
    digest = fitted_digest(pipeline)
    assert digest is not None
    assert fitted_digest(make_pipeline(StandardScaler(), LogisticRegression())) is None  # not fitted
    other = subprocess.run(
        [sys.executable, "-c", _PIPELINE_SCRIPT], capture_output=True, text=True, check=True
    )
    assert other.stdout.strip() == digest
    refit = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X[:100], Y[:100])
    assert fitted_digest(refit) not in (None, digest)
    local = make_pipeline(FunctionTransformer(func=_clip), FunctionTransformer(func=lambda x: x)).fit(X)
    with inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}", system="iris", spool_dir=tmp_path / "spool"
    ) as log:
        inferlog.wrap(pipeline, log).predict(X[:2])
        inferlog.wrap(local, log).transform(X[:1])  # not a logged method: passes through
        inferlog.wrap(KNeighborsClassifier(metric=_distance, algorithm="brute").fit(X, Y), log).predict(X[:1])
        log.flush()
        records = inferences(log.query(kind="inference"))
    assert (records[0].model.name, records[0].model.digest) == ("Pipeline", digest)
    knn = records[1]
    assert knn.model.digest is not None
    assert knn.parameters["metric"] == f"{__name__}._distance"


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum())
