"""Ground-truth measures from a bucket state's confusion counts and error sums. Pure.

Classification: accuracy, and precision, recall and F1 macro-averaged over every class that occurs as
a label or a prediction, as scikit-learn's ``average="macro"`` computes them (a class never predicted
has precision 0, one never labelled recall 0; F1 is averaged per class, not computed from the
averages). Regression: MAE and RMSE over (label, prediction) pairs.
"""

from __future__ import annotations

import math

from inferlog.monitor.sketch import BucketState


def _classes(state: BucketState) -> list[str]:
    names = set(state.confusion)
    for row in state.confusion.values():
        names.update(row)
    return sorted(names)


def accuracy(state: BucketState) -> float | None:
    total = state.labeled
    if not total:
        return None
    return sum(row.get(label, 0) for label, row in state.confusion.items()) / total


def per_class(state: BucketState) -> dict[str, tuple[float, float, float, int]]:
    """class -> (precision, recall, F1, support), zero where undefined (as scikit-learn's zero_division=0)."""
    classes = _classes(state)
    predicted = dict.fromkeys(classes, 0)
    for row in state.confusion.values():
        for guess, n in row.items():
            predicted[guess] += n
    result: dict[str, tuple[float, float, float, int]] = {}
    for name in classes:
        row = state.confusion.get(name, {})
        tp = row.get(name, 0)
        support = sum(row.values())
        precision = tp / predicted[name] if predicted[name] else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[name] = (precision, recall, f1, support)
    return result


def macro(state: BucketState, which: int) -> float | None:
    """Macro average of precision (0), recall (1) or F1 (2)."""
    scores = per_class(state)
    if not scores or not state.labeled:
        return None
    return sum(values[which] for values in scores.values()) / len(scores)


def mae(state: BucketState) -> float | None:
    return state.reg_abs / state.reg_n if state.reg_n else None


def rmse(state: BucketState) -> float | None:
    return math.sqrt(state.reg_sq / state.reg_n) if state.reg_n else None


def override_rate(state: BucketState) -> float | None:
    return state.overridden / state.reviewed if state.reviewed else None
