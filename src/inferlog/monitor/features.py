"""Which values of an entry are features, outputs and labels, read from the payload itself. Pure.

Features come from the input as it was logged:

- a flat JSON object: each key is a feature (nested objects give dotted names, ``applicant.age``, three
  levels deep at most); a list of such objects is a batch, one row each;
- Open Inference Protocol tensors (``{"inputs": [{"name", "shape", "datatype", "data"}]}``): a tensor of
  shape ``[n]`` is one feature over ``n`` rows, ``[n, k]`` gives features ``name[0]`` .. ``name[k-1]``
  (``name`` alone when ``k`` is 1); tensors of more dimensions (images) are not features.

A value is *numeric* (int or float), *categorical* (a string of at most 64 characters, or a boolean),
or *null* (JSON null, NaN: a missing value). Longer strings are free text, not a category (a prompt is
no feature, and its words never enter a rollup). The policy file's ``[monitoring.systems.<name>]``
narrows the features and forces some to be categorical (:class:`~inferlog.monitor.policy.FeatureConfig`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

MAX_CATEGORY_LENGTH = 64
MAX_ROWS = 1000  # rows of one entry's batch that are folded (a bigger batch counts its first 1000)
MAX_FEATURES = 200  # features of one row (a wider row keeps its first 200 names, sorted)
MAX_DEPTH = 3
_OUTPUT_KEYS = ("prediction", "predictions", "label", "class", "output", "outputs", "score", "value", "y")

NULL = object()  # a missing value


def rows_of(value: Any) -> list[dict[str, Any]]:
    """The feature rows of one input: ``[{feature: value}]`` (empty when the input has no features)."""
    if isinstance(value, Mapping):
        tensors = value.get("inputs")
        if (
            isinstance(tensors, list)
            and tensors
            and all(isinstance(t, Mapping) and "data" in t for t in tensors)
        ):
            return _tensor_rows(tensors)
        row: dict[str, Any] = {}
        _flatten(value, "", row, 1)
        return [row] if row else []
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        rows = []
        for item in value[:MAX_ROWS]:
            row = {}
            _flatten(item, "", row, 1)
            rows.append(row)
        return rows
    return []


def _flatten(value: Mapping[str, Any], prefix: str, into: dict[str, Any], depth: int) -> None:
    for key, item in value.items():
        name = f"{prefix}{key}" if prefix else key
        kind = type(item)
        if kind is float or kind is int or kind is str or item is None:  # the common case, cheaply
            into[name] = item
        elif isinstance(item, Mapping):
            if depth < MAX_DEPTH:
                _flatten(item, f"{name}.", into, depth + 1)
        elif not isinstance(item, list):
            into[name] = item


def _flat(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    else:
        yield data


def _tensor_rows(tensors: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for tensor in tensors:
        name = str(tensor.get("name", "input"))
        values = list(_flat(tensor.get("data")))
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            shape = [len(values)]
        if len(shape) > 2 or math.prod(shape) != len(values):
            continue
        n, k = (shape[0], shape[1]) if len(shape) == 2 else ((shape[0] if shape else 1), 1)
        n = min(n, MAX_ROWS)
        while len(rows) < n:
            rows.append({})
        for i in range(n):
            for j in range(k):
                rows[i][name if k == 1 else f"{name}[{j}]"] = values[i * k + j]
    return rows


def classify(value: Any) -> tuple[str, Any]:
    """``("num", float)``, ``("cat", str)``, ``("null", None)``, or ``("skip", None)`` for free text and others."""
    if value is None:
        return "null", None
    if isinstance(value, bool):
        return "cat", "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return "null", None
        if math.isinf(value):
            return "skip", None
        return "num", float(value)
    if isinstance(value, str):
        return ("cat", value) if len(value) <= MAX_CATEGORY_LENGTH else ("skip", None)
    return "skip", None


def class_label(value: Any) -> str | None:
    """A class as the monitor names it: ``1``, ``1.0`` and ``"1"`` are the same class ``"1"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_CATEGORY_LENGTH else None
    return None


def predictions(output: Any) -> list[Any]:
    """The model's predictions in an output: OIP output tensors' first tensor, a known key, or the value."""
    if isinstance(output, Mapping):
        tensors = output.get("outputs")
        if isinstance(tensors, list) and tensors and isinstance(tensors[0], Mapping) and "data" in tensors[0]:
            return list(_flat(tensors[0]["data"]))[:MAX_ROWS]
        for key in _OUTPUT_KEYS:
            if key in output:
                return predictions(output[key])
        if len(output) == 1:
            return predictions(next(iter(output.values())))
        return []
    if isinstance(output, list):
        return [item for item in _flat(output) if not isinstance(item, Mapping)][:MAX_ROWS]
    return [output]


def prediction(output: Any) -> Any:
    """The one prediction a label is compared with (the first, for a batch); None if there is none."""
    found = predictions(output)
    return found[0] if found else None


def label_of(value: Any) -> Any:
    """A feedback label as a single value (the first prediction-like value of a structured label)."""
    if isinstance(value, Mapping | list):
        return prediction(value)
    return value
