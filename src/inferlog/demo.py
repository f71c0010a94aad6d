"""A realistic inference log in a few seconds: ``inferlog demo`` / :func:`run_demo`.

Two versions of a real scikit-learn classifier, trained on the breast-cancer data that ships with
scikit-learn (no download), answer a stream of screening requests for a dozen pseudonymous data
subjects in two regions. Version 1.0.0 is called through ``inferlog.wrap(estimator, log)``; version
1.1.0, rolled out as a canary for the second half of the stream, through ``log.trace(...)`` around a
JSON-style API handler. Some requests are malformed and fail inside the model: they are logged as
errors and the demo carries on. Ground-truth labels arrive later for about a third of the
predictions, and a human reviewer overrides two of them.

The stream is spread over the last :data:`DAYS` days, so the console's charts have a history, and in
its last day a new scanner shifts one input of the canary (:data:`DRIFTED_FEATURE` reads
:data:`DRIFT_FACTOR` times higher): :func:`demo_policy` writes the monitoring rule that catches it,
against the canary's first days as the reference.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pickle
from dataclasses import dataclass, field
from typing import Any

import inferlog
from inferlog.config import DEFAULT_DB
from inferlog.errors import StoreUnavailable, UsageError
from inferlog.record.ids import uuid7

SYSTEM = "breast-cancer-screening"
MODEL_NAME = "tumor-classifier"
VERSIONS = ("1.0.0", "1.1.0")
REGIONS = ("eu-west", "eu-central")
SUBJECTS = 12
REVIEWER = "reviewer-7"
FAILURE_EVERY = 25  # one request in 25 is malformed
DAYS = 7  # the stream is spread over this many days, ending now
DRIFT_DAYS = 1.0  # in its last day...
DRIFTED_FEATURE = "mean texture"  # ...this input of the canary drifts...
DRIFT_FACTOR = 1.6  # ...by this factor (a new scanner's calibration)
REFERENCE = "canary-launch"  # the drift reference: the canary's first days


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`run_demo` logged, with real ids to try the CLI on."""

    db_url: str
    system: str
    inferences: int
    errors: int
    feedback: int
    overrides: int
    by_version: dict[str, int]
    example_id: str
    error_id: str | None
    override_id: str | None
    subject: str
    started: dt.datetime | None = None  # the first record's time
    drift_since: dt.datetime | None = None  # from here on, the canary's DRIFTED_FEATURE is shifted
    canary_since: dt.datetime | None = None  # the canary's first record

    def next_steps(self) -> str:
        """The summary and the commands worth trying next, ready to print."""
        db = "" if self.db_url == DEFAULT_DB else f" --db {self.db_url}"
        versions = ", ".join(f"{count} by {version}" for version, count in self.by_version.items())
        lines = [
            f"Logged {self.inferences} predictions ({versions}), {self.errors} of them failed,",
            f"and {self.feedback} feedback entries ({self.overrides} human overrides by {REVIEWER})",
            f"for system {self.system!r} in {self.db_url}.",
            "",
            "Try next:",
            f"  inferlog{db} stats",
            f"  inferlog{db} query --version {VERSIONS[1]} --attr region=eu-west --limit 5",
            f"  inferlog{db} query --status error",
            f"  inferlog{db} query --subject {self.subject} --json",
            f"  inferlog{db} show {self.example_id}",
        ]
        if self.error_id:
            lines.append(f"  inferlog{db} show {self.error_id}")
        if self.override_id:
            lines.append(f"  inferlog{db} query --kind feedback --inference-id {self.override_id}")
        lines += [
            f"  inferlog{db} tail -f",
            f"  inferlog{db} export --format parquet --output demo.parquet",
            '  python -c "import duckdb; print(duckdb.sql(\\"select version, status, count(*) '
            "from 'demo.parquet' group by all\\\"))\"",
            "",
            "Prove nobody edited it:",
            "  inferlog keys init-signer --origin demo.example/log",
            "  mkdir -p checkpoints   # stands for another disk or a WORM mount: never created by inferlog",
            f"  inferlog{db} checkpoint --to checkpoints/",
            f"  inferlog{db} verify --checkpoints checkpoints/",
            f"  inferlog{db} verify record {self.example_id}",
            "",
            "Serve it over HTTP (the console at http://127.0.0.1:8000/, OpenAPI at /docs):",
            f"  inferlog{db} serve --no-auth",
            "",
            "(The inferlog command is in .venv/bin: run `source .venv/bin/activate` first.)",
        ]
        return "\n".join(lines)


def _sklearn() -> Any:
    try:
        import numpy as np
        from sklearn.datasets import load_breast_cancer
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise UsageError("the demo needs scikit-learn: install inferlog[demo]") from None
    return (
        np, load_breast_cancer, RandomForestClassifier, LogisticRegression, train_test_split,
        make_pipeline, StandardScaler,
    )  # fmt: skip


def _model(estimator: Any, version: str) -> inferlog.Model:
    digest = hashlib.sha256(pickle.dumps(estimator)).hexdigest()
    return inferlog.Model(
        MODEL_NAME,
        version,
        digest=f"sha256:{digest}",
        uri=f"models:/{MODEL_NAME}/{version}",
        provider="scikit-learn",
    )


@dataclass(frozen=True)
class _Trained:
    """The two model versions, trained, and the held-out rows the stream of requests draws from."""

    np: Any
    features: list[str]
    labels: list[str]  # 0 = malignant, 1 = benign
    x_test: Any
    y_test: Any
    v1: Any
    v2: Any
    model_v1: inferlog.Model
    model_v2: inferlog.Model


@dataclass
class _Served:
    """What the stream of requests left in the log."""

    ok_ids: list[tuple[str, str]] = field(default_factory=list)  # (inference id, true label)
    error_ids: list[str] = field(default_factory=list)
    by_version: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERSIONS, 0))
    subjects: list[str] = field(default_factory=list)


def run_demo(
    db_url: str, n: int = 500, seed: int = 7, *, spool_dir: str | os.PathLike[str] | None = None
) -> DemoSummary:
    """Train two model versions and log ``n`` predictions, their failures and feedback to ``db_url``."""
    if n < 1:
        raise UsageError("the demo needs at least one prediction")
    trained = _train(seed)
    clock = _Clock(n, dt.datetime.now(dt.UTC))
    with inferlog.open(db_url, system=SYSTEM, spool_dir=spool_dir) as log:
        served = _serve(log, trained, n, seed, clock)
        feedback, overridden = _give_feedback(log, served.ok_ids)
        if not log.flush(timeout=30):
            raise StoreUnavailable(f"the demo's records did not all reach {db_url} within 30 s")
    ok_ids, error_ids, subjects = served.ok_ids, served.error_ids, served.subjects
    return DemoSummary(
        db_url=db_url,
        system=SYSTEM,
        inferences=n,
        errors=len(error_ids),
        feedback=feedback + len(overridden),
        overrides=len(overridden),
        by_version=served.by_version,
        example_id=ok_ids[0][0] if ok_ids else error_ids[0],
        error_id=error_ids[0] if error_ids else None,
        override_id=overridden[0] if overridden else None,
        subject=max(set(subjects), key=subjects.count),
        started=clock.at(0),
        drift_since=clock.drift_since,
        canary_since=clock.at(n // 2),
    )


@dataclass(frozen=True)
class _Clock:
    """When request ``i`` of ``n`` happened: evenly over the last :data:`DAYS` days, ending just now."""

    n: int
    end: dt.datetime

    @property
    def start(self) -> dt.datetime:
        return self.end - dt.timedelta(days=DAYS)

    def at(self, i: int) -> dt.datetime:
        return self.start + dt.timedelta(days=DAYS) * i / self.n

    @property
    def drift_since(self) -> dt.datetime:
        return self.end - dt.timedelta(days=DRIFT_DAYS)


def demo_policy(summary: DemoSummary) -> str:
    """A policy file (TOML) for the demo's log: what to monitor, the drift reference, and two alert rules.

    The reference is the canary's first day and a half of traffic; the drift rule watches the
    canary's :data:`DRIFTED_FEATURE` over the last day, where the demo shifted it.
    """
    since = summary.canary_since or dt.datetime.now(dt.UTC)
    until = since + dt.timedelta(days=1.5)

    def iso(t: dt.datetime) -> str:
        return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return "\n".join(
        [
            "# The demo's policy: monitoring of the breast-cancer screening system (written by inferlog demo).",
            f"[monitoring.references.{REFERENCE}]",
            f'system = "{SYSTEM}"',
            f"since = {iso(since)}",
            f"until = {iso(until)}",
            "",
            "[[monitoring.alerts]]",
            'name = "canary input drift"',
            f'metric = "psi:{DRIFTED_FEATURE}"',
            f'system = "{SYSTEM}"',
            f'model = "{MODEL_NAME}"',
            f'version = "{VERSIONS[1]}"',
            f'reference = "{REFERENCE}"',
            "above = 0.2",
            'window = "1d"',
            "min_volume = 20",
            "",
            "[[monitoring.alerts]]",
            'name = "screening errors"',
            'metric = "error_rate"',
            f'system = "{SYSTEM}"',
            "above = 0.1",
            'window = "1d"',
            "min_volume = 20",
            "",
        ]
    )


def _train(seed: int) -> _Trained:
    """Version 1.0.0 (scaled logistic regression) and 1.1.0 (random forest) on 70 % of the data."""
    (np, load_breast_cancer, RandomForestClassifier, LogisticRegression, train_test_split,
     make_pipeline, StandardScaler) = _sklearn()  # fmt: skip
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    v1 = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    v2 = RandomForestClassifier(n_estimators=50, random_state=seed).fit(x_train, y_train)
    return _Trained(
        np=np,
        features=[str(name) for name in data.feature_names],
        labels=[str(name) for name in data.target_names],
        x_test=x_test,
        y_test=y_test,
        v1=v1,
        v2=v2,
        model_v1=_model(v1, VERSIONS[0]),
        model_v2=_model(v2, VERSIONS[1]),
    )


def _serve(log: inferlog.Log, trained: _Trained, n: int, seed: int, clock: _Clock) -> _Served:
    """``n`` requests from random subjects and regions; the canary answers most of the second half.

    In the last :data:`DRIFT_DAYS` the canary's :data:`DRIFTED_FEATURE` comes in shifted.
    """
    rng = trained.np.random.default_rng(seed)
    served = _Served()
    for i in range(n):
        row = int(rng.integers(len(trained.x_test)))
        subject = f"subj-{int(rng.integers(1, SUBJECTS + 1)):04d}"
        region = REGIONS[int(rng.integers(len(REGIONS)))]
        canary = i >= n // 2 and i % 10 < 7
        malformed = i % FAILURE_EVERY == 7
        ts = clock.at(i)
        common = {"subject": subject, "request_id": f"req-{seed}-{i:05d}", "actor": "clinic-portal", "ts": ts}
        served.subjects.append(subject)
        served.by_version[VERSIONS[1] if canary else VERSIONS[0]] += 1
        screen = _screen_canary if canary else _predict_stable
        x = trained.x_test[row]
        if canary and ts >= clock.drift_since:
            x = x.copy()
            x[trained.features.index(DRIFTED_FEATURE)] *= DRIFT_FACTOR
        entry_id, ok = screen(log, trained, x, region, malformed, common)
        if ok:
            served.ok_ids.append((entry_id, trained.labels[int(trained.y_test[row])]))
        else:
            served.error_ids.append(entry_id)
    return served


def _predict_stable(
    log: inferlog.Log, trained: _Trained, x: Any, region: str, malformed: bool, common: dict[str, Any]
) -> tuple[str, bool]:
    """Version 1.0.0 through ``inferlog.wrap``; a malformed request drops a feature. (id, succeeded)."""
    entry_id = uuid7()
    attributes = {"endpoint": "/v1/predict", "region": region}
    try:
        wrapped = inferlog.wrap(
            trained.v1, log, model=trained.model_v1, id=entry_id, attributes=attributes, **common
        )
        batch = x[:-1] if malformed else x  # a client that dropped a feature
        wrapped.predict_proba(batch.reshape(1, -1))
    except ValueError:
        return entry_id, False
    return entry_id, True


def _screen_canary(
    log: inferlog.Log, trained: _Trained, x: Any, region: str, malformed: bool, common: dict[str, Any]
) -> tuple[str, bool]:
    """Version 1.1.0 behind a JSON-style handler, in ``log.trace``; a malformed one sends text. (id, succeeded)."""
    features = trained.features
    payload: dict[str, Any] = {name: round(float(value), 5) for name, value in zip(features, x, strict=True)}
    if malformed:
        payload["mean radius"] = "n/a"  # a client sent text where a number belongs
    attributes = {"endpoint": "/v2/screen", "region": region}
    call = log.trace(
        trained.model_v2, input=payload, parameters={"threshold": 0.5}, attributes=attributes, **common
    )
    try:
        with call:
            vector = trained.np.array([[float(payload[name]) for name in features]])
            p_malignant = float(trained.v2.predict_proba(vector)[0][0])
            call.output = {
                "label": trained.labels[0] if p_malignant >= 0.5 else trained.labels[1],
                "p_malignant": round(p_malignant, 4),
            }
    except ValueError:
        return call.id, False
    return call.id, True


def _give_feedback(log: inferlog.Log, ok_ids: list[tuple[str, str]]) -> tuple[int, list[str]]:
    """Ground truth for every third prediction, then a reviewer overrides two: (truths, overridden ids)."""
    feedback = 0
    for index, (entry_id, truth) in enumerate(ok_ids):
        if index % 3 == 0:
            log.feedback(entry_id, label=truth, outcome="biopsy", actor="pathology-lab")
            feedback += 1
    overridden = [entry_id for entry_id, _ in ok_ids[len(ok_ids) // 3 :: max(1, len(ok_ids) // 2)]][:2]
    for entry_id in overridden:
        log.feedback(
            entry_id,
            override={"label": "refer-for-biopsy"},
            comment="second reader saw a suspicious margin; overriding the model",
            actor=REVIEWER,
        )
    return feedback, overridden
