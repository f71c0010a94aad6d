"""``inferlog.wrap(estimator, log)``: a scikit-learn estimator whose predictions are logged.

Each ``predict`` / ``predict_proba`` / ``decision_function`` call is one record: the input rows, the
outputs, the method, and the estimator's class and parameters. Everything else passes through.

Without a ``model``, the record's model is the estimator's class, and its digest is
:func:`fitted_digest`: a SHA-256 of the fitted state, the same for the same fit whatever the Python,
pickle or scikit-learn build (a pickle's bytes are not). If that digest is registered in the log
(``inferlog models register NAME VERSION --digest ...``), the registration's name, version and URI
are recorded instead of ``unversioned``. The digest is taken once, when the estimator is wrapped:
wrap it again after refitting it.

At wrap time the estimator's schema (:func:`inferlog.model_schemas.sklearn_schema`: its feature
names, its classes' type) is recorded as a ``model.schema`` entry of the model version, once per
process, when the version is known (given, or found by digest in the registry) and the Log can write
it (a store, or a server with an admin key); a failure is a warning, never an error of ``wrap``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from typing import TYPE_CHECKING, Any

from inferlog.model_schemas import sklearn_schema
from inferlog.record.model import Model
from inferlog.sdk.capture import record_for_caller

if TYPE_CHECKING:
    from inferlog.sdk.client import Log

LOGGED_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def default_model(estimator: Any) -> Model:
    cls = type(estimator)
    version = getattr(estimator, "__inferlog_version__", None) or "unversioned"
    return Model(
        name=cls.__name__,
        version=str(version),
        digest=fitted_digest(estimator),
        provider=cls.__module__.split(".")[0],
    )


def fitted_digest(estimator: Any) -> str | None:
    """``sha256:<hex>`` of an estimator's fitted state; None if it is not fitted.

    What is hashed, in a canonical order: the class's qualified name, ``get_params(deep=False)``, and
    every fitted attribute (a public name ending in ``_``). Arrays count by dtype, shape and bytes
    (object arrays item by item); nested estimators and objects such as a tree's ``tree_`` by their
    state. So the same data and parameters give the same digest, and any change in the fit another.
    """
    fitted = sorted(k for k in vars(estimator) if k.endswith("_") and not k.startswith("_"))
    if not fitted and not _fitted_by_its_parts(estimator):
        return None
    sha = hashlib.sha256()
    _feed(sha, type(estimator).__module__ + "." + type(estimator).__qualname__, 0)
    get_params = getattr(estimator, "get_params", None)
    _feed(sha, get_params(deep=False) if get_params is not None else {}, 0)
    for name in fitted:
        _feed(sha, name, 0)
        _feed(sha, getattr(estimator, name), 0)
    return f"sha256:{sha.hexdigest()}"


def _fitted_by_its_parts(estimator: Any) -> bool:
    """A meta-estimator (a Pipeline) keeps no fitted attribute of its own: it says whether its steps are fitted."""
    says = getattr(estimator, "__sklearn_is_fitted__", None)
    if not callable(says):
        return False
    try:
        return bool(says())
    except Exception:  # noqa: BLE001 - an estimator that cannot say is taken as not fitted
        return False


_MAX_DEPTH = 50
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def callable_name(value: Any) -> str:
    """A function, builtin, ufunc or method by its qualified name: the same in every process (its repr
    holds a memory address). A ``functools.partial`` adds its bound arguments."""
    if isinstance(value, functools.partial):
        bound = [repr(a) for a in value.args] + [f"{k}={v!r}" for k, v in sorted(value.keywords.items())]
        return _ADDRESS.sub("", f"partial({callable_name(value.func)}, {', '.join(bound)})")
    module = getattr(value, "__module__", None) or type(value).__module__
    name = (
        getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or type(value).__qualname__
    )
    return f"{module}.{name}"


def _feed(sha: Any, value: Any, depth: int) -> None:
    """Add ``value`` to the hash, each kind tagged so ``[1]`` and ``"1"`` differ."""
    if depth > _MAX_DEPTH:
        sha.update(b"<deep>")
        return
    if value is None or isinstance(value, bool | int | float | str):
        sha.update(b"j" + json.dumps(value).encode() + b";")
        return
    if isinstance(value, bytes):
        sha.update(b"b%d:" % len(value) + value)
        return
    dtype = getattr(value, "dtype", None)
    if dtype is not None and hasattr(value, "tobytes") and hasattr(value, "shape"):
        if dtype.kind == "O" or dtype.hasobject:  # pointers: hash the items themselves
            sha.update(b"O" + repr(value.shape).encode())
            _feed(sha, value.tolist(), depth + 1)
        else:
            sha.update(b"a" + dtype.str.encode() + repr(value.shape).encode())
            sha.update(value.tobytes(order="C"))
        return
    if isinstance(value, dict):
        sha.update(b"{%d" % len(value))
        for key in sorted(value, key=repr):
            _feed(sha, repr(key), depth + 1)
            _feed(sha, value[key], depth + 1)
        return
    if isinstance(value, list | tuple):
        sha.update(b"[%d" % len(value))
        for item in value:
            _feed(sha, item, depth + 1)
        return
    if hasattr(value, "get_params"):  # a nested estimator (a forest's trees, a pipeline's steps)
        sha.update(b"e" + (fitted_digest(value) or _ADDRESS.sub("", repr(value))).encode())
        return
    if callable(value) and not isinstance(value, type):  # a param such as FunctionTransformer(func=...)
        sha.update(b"f" + callable_name(value).encode())
        return
    try:
        state = value.__reduce__() if hasattr(value, "__reduce__") else None
    except Exception:  # noqa: BLE001 - not picklable (a lock, a generator): hashed by its type and repr
        state = None
    if isinstance(state, tuple) and len(state) >= 3 and isinstance(state[2], dict):  # a Cython tree
        sha.update(b"s" + type(value).__qualname__.encode())
        _feed(sha, state[2], depth + 1)
        return
    sha.update(b"r" + _ADDRESS.sub("", repr(value)).encode())


class LoggedEstimator:
    """Proxy for an estimator: logged prediction methods, everything else delegated."""

    def __init__(self, estimator: Any, log: Log, model: Model | None = None, **fields: Any) -> None:
        self.estimator = estimator
        self.log = log
        self.model = model or default_model(estimator)
        self.attributes = dict(fields.pop("attributes", None) or {})
        self.fields = fields
        self._parameters = _jsonable_params(estimator)
        named = log.lineage.attach(self.model) if log.lineage is not None else self.model
        log.capture_schema(named, sklearn_schema(estimator), "sklearn")

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
        elif callable(value) and not isinstance(value, type) and not hasattr(value, "get_params"):
            out[key] = callable_name(value)
        else:
            out[key] = _ADDRESS.sub("", repr(value))
    return out


def wrap(estimator: Any, log: Log, model: Model | None = None, **fields: Any) -> Any:
    """Return ``estimator`` with its prediction methods logged to ``log``."""
    return LoggedEstimator(estimator, log, model, **fields)
