"""``inferlog.wrap(estimator, log)``: a scikit-learn estimator whose predictions are logged.

Each ``predict`` / ``predict_proba`` / ``decision_function`` call is one record: the input rows, the
outputs, the method, and the estimator's class and parameters. Everything else passes through.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from inferlog.record.model import Model
from inferlog.sdk.capture import record_for_caller

if TYPE_CHECKING:
    from inferlog.sdk.client import Log

LOGGED_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def default_model(estimator: Any) -> Model:
    cls = type(estimator)
    version = getattr(estimator, "__inferlog_version__", None) or "unversioned"
    return Model(name=cls.__name__, version=str(version), provider=cls.__module__.split(".")[0])


class LoggedEstimator:
    """Proxy for an estimator: logged prediction methods, everything else delegated."""

    def __init__(self, estimator: Any, log: Log, model: Model | None = None, **fields: Any) -> None:
        self.estimator = estimator
        self.log = log
        self.model = model or default_model(estimator)
        self.attributes = dict(fields.pop("attributes", None) or {})
        self.fields = fields
        self._parameters = _jsonable_params(estimator)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.estimator, name)
        if name not in LOGGED_METHODS:
            return attr

        def logged(x: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = attr(x, *args, **kwargs)
            except Exception as exc:
                self._record(name, x, None, start, exc)
                raise
            self._record(name, x, result, start, None)
            return result

        return logged

    def _record(self, method: str, x: Any, result: Any, start: float, exc: Exception | None) -> None:
        attributes = {"method": method, **self.attributes}
        record_for_caller(  # never raises into predict() (unless the Log is fail_closed)
            self.log,
            model=self.model,
            input=x,
            output=result,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            error=exc,
            parameters=self._parameters,
            attributes=attributes,
            **self.fields,
        )


def _jsonable_params(estimator: Any) -> dict[str, Any]:
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in get_params(deep=False).items():
        if value is None or isinstance(value, str | int | float | bool):
            out[key] = value
        else:
            out[key] = repr(value)
    return out


def wrap(estimator: Any, log: Log, model: Model | None = None, **fields: Any) -> Any:
    """Return ``estimator`` with its prediction methods logged to ``log``."""
    return LoggedEstimator(estimator, log, model, **fields)
