"""Drift of one feature between a reference and a window, from their sketches alone. Pure.

Numeric features: the **Population Stability Index** over ten bins cut at the reference's deciles
(read from its KLL sketch), ``PSI = sum((w - r) * ln(w / r))``. PSI is the measure credit-risk model
validation has used for decades, with thresholds people already act on: below 0.1 no significant
shift, 0.1 to 0.2 moderate, 0.2 and above a major shift. Quantile bins give every bin a tenth of
the reference, so PSI is insensitive to the feature's scale and to outliers. Beside it, on the same
bins, the **Jensen-Shannon distance** (base 2, bounded in [0, 1], symmetric, defined when a bin is
empty), and the **Wasserstein-1 distance** approximated from 99 quantiles, in the feature's own
units (how far the mass moved).

Categorical features: Jensen-Shannon distance and PSI over the categories (the union of both sides,
"other" included). Both: the missing-value rate (rows without a value) and the type-change rate
(values of the other type than the reference's: strings where numbers were).

Empty bins are floored at 1e-4 before PSI's logarithm, the usual practice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from inferlog.monitor.sketch import BucketState, Categories, FeatureState

EPSILON = 1e-4
MODERATE = 0.1
MAJOR = 0.2
DECILES = [i / 10 for i in range(1, 10)]
_WASSERSTEIN_GRID = [i / 100 for i in range(1, 100)]

Severity = Literal["none", "moderate", "major"]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift between a reference and a window; a distance is None when a side has no values."""

    feature: str
    type: Literal["numeric", "categorical"]
    count: int  # values in the window (either type)
    reference_count: int
    psi: float | None
    jsd: float | None
    wasserstein: float | None
    missing_rate: float | None
    reference_missing_rate: float | None
    type_change_rate: float | None

    @property
    def severity(self) -> Severity:
        if self.psi is None or self.psi < MODERATE:
            return "none"
        return "moderate" if self.psi < MAJOR else "major"

    @property
    def drifted(self) -> bool:
        """PSI at or above 0.2: a major shift."""
        return self.severity == "major"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.severity, "drifted": self.drifted}


def _psi(window: Sequence[float], reference: Sequence[float]) -> float:
    w = _floored(window)
    r = _floored(reference)
    return sum((a - b) * math.log(a / b) for a, b in zip(w, r, strict=True))


def _floored(masses: Sequence[float]) -> list[float]:
    floored = [max(m, EPSILON) for m in masses]
    total = sum(floored)
    return [m / total for m in floored]


def _jsd(window: Sequence[float], reference: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2: 0 for equal distributions, 1 for disjoint ones."""
    sw, sr = sum(window), sum(reference)
    divergence = 0.0
    for a, b in zip(window, reference, strict=True):
        p, q = a / sw, b / sr
        m = (p + q) / 2
        if p > 0:
            divergence += 0.5 * p * math.log2(p / m)
        if q > 0:
            divergence += 0.5 * q * math.log2(q / m)
    return math.sqrt(max(divergence, 0.0))


def _splits(reference: FeatureState) -> list[float]:
    assert reference.num is not None  # noqa: S101 - callers check
    return sorted({float(x) for x in reference.num.get_quantiles(DECILES)})


def numeric_distances(window: FeatureState, reference: FeatureState) -> tuple[float, float, float] | None:
    """(PSI, JS distance, Wasserstein-1) of the numeric values, or None if a side has none."""
    if window.num is None or reference.num is None or window.num.is_empty() or reference.num.is_empty():
        return None
    splits = _splits(reference)
    ref_mass = [float(x) for x in reference.num.get_pmf(splits)]
    win_mass = [float(x) for x in window.num.get_pmf(splits)]
    qr = reference.num.get_quantiles(_WASSERSTEIN_GRID)
    qw = window.num.get_quantiles(_WASSERSTEIN_GRID)
    wasserstein = sum(abs(float(a) - float(b)) for a, b in zip(qr, qw, strict=True)) / len(_WASSERSTEIN_GRID)
    return _psi(win_mass, ref_mass), _jsd(win_mass, ref_mass), wasserstein


def categorical_distances(window: Categories, reference: Categories) -> tuple[float, float] | None:
    """(PSI, JS distance) over the categories, or None if a side has none."""
    if not window.total or not reference.total:
        return None
    names = sorted(set(window.counts) | set(reference.counts))
    w = [float(window.counts.get(n, 0)) for n in names] + [float(window.other)]
    r = [float(reference.counts.get(n, 0)) for n in names] + [float(reference.other)]
    sw, sr = sum(w), sum(r)
    return _psi([x / sw for x in w], [x / sr for x in r]), _jsd(w, r)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def feature_drift(name: str, window: BucketState, reference: BucketState) -> FeatureDrift:
    """The drift of feature ``name`` (absent on a side = all missing there)."""
    empty = FeatureState()
    win = window.features.get(name, empty)
    ref = reference.features.get(name, empty)
    ref_numbers, ref_cats = ref.numbers, ref.cats.total
    numeric = ref_numbers >= ref_cats if (ref_numbers or ref_cats) else win.numbers >= win.cats.total
    count = win.numbers + win.cats.total
    ref_count = ref_numbers + ref_cats
    psi = jsd = wasserstein = None
    if numeric:
        found = numeric_distances(win, ref)
        if found is not None:
            psi, jsd, wasserstein = found
        other = win.cats.total
    else:
        distances = categorical_distances(win.cats, ref.cats)
        if distances is not None:
            psi, jsd = distances
        other = win.numbers
    return FeatureDrift(
        feature=name, type="numeric" if numeric else "categorical", count=count, reference_count=ref_count,
        psi=psi, jsd=jsd, wasserstein=wasserstein,
        missing_rate=_rate(max(window.rows - count, 0), window.rows),
        reference_missing_rate=_rate(max(reference.rows - ref_count, 0), reference.rows),
        type_change_rate=_rate(other, count),
    )  # fmt: skip


def drift_report(window: BucketState, reference: BucketState) -> list[FeatureDrift]:
    """Every feature of the reference or the window, by name."""
    names = sorted(set(window.features) | set(reference.features))
    return [feature_drift(name, window, reference) for name in names]


def output_drift(window: BucketState, reference: BucketState) -> float | None:
    """PSI of the output distribution (classes, or numeric outputs on reference deciles)."""
    if reference.out_cats.total or window.out_cats.total:
        found = categorical_distances(window.out_cats, reference.out_cats)
        return None if found is None else found[0]
    win, ref = FeatureState(), FeatureState()
    win.num, ref.num = window.out_num, reference.out_num
    numeric = numeric_distances(win, ref)
    return None if numeric is None else numeric[0]
