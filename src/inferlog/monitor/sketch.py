"""One bucket's aggregates as mergeable sketches: what a rollup row holds, and how two of them merge.

Everything here merges: counts add, KLL quantile sketches (Apache DataSketches) merge with a known
error bound, capped category counts keep their top values and fold the rest into ``other``. So a
day is the merge of its hours, an hour of its minutes, and a window of whatever buckets cover it:
no query ever goes back to the entries.

KLL with ``k = 200`` has a normalized rank error of about 1.65 % (DataSketches' documented bound),
and is exact while a sketch holds fewer than ``k`` values. A sketch keeps a sample of the values it
saw, never which entry they came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import msgspec
from datasketches import kll_doubles_sketch

KLL_K = 200
MERGE_AT = 8  # pending values from which a feature merges up as a sketch rather than value by value
CATEGORY_CAP = 100  # distinct values kept per feature and bucket; the rest count as "other"
FORMAT = 1  # bumps when the serialized shape changes (older rollups are rebuilt)
ALL = frozenset({"latency", "outputs", "features", "delay"})  # what from_bytes reads beside the counts
COUNTS: frozenset[str] = frozenset()  # counts, confusion, errors sums and reviews only


def new_kll() -> kll_doubles_sketch:
    return kll_doubles_sketch(KLL_K)


def merge_kll(a: kll_doubles_sketch | None, b: kll_doubles_sketch | None) -> kll_doubles_sketch | None:
    """``a`` with ``b`` merged in (``a`` is changed; None is the empty sketch)."""
    if b is None or b.is_empty():
        return a
    if a is None:
        a = new_kll()
    a.merge(b)
    return a


def _kll_bytes(sketch: kll_doubles_sketch | None) -> bytes | None:
    return None if sketch is None or sketch.is_empty() else bytes(sketch.serialize())


def _kll_of(data: bytes | None) -> kll_doubles_sketch | None:
    return None if data is None else kll_doubles_sketch.deserialize(data)


class Categories:
    """Counts of at most :data:`CATEGORY_CAP` values; values beyond the cap count in ``other``."""

    __slots__ = ("counts", "other")

    def __init__(self, counts: dict[str, int] | None = None, other: int = 0) -> None:
        self.counts: dict[str, int] = counts if counts is not None else {}
        self.other = other

    def add(self, value: str, n: int = 1) -> None:
        counts = self.counts
        if value in counts:
            counts[value] += n
        elif len(counts) < CATEGORY_CAP:
            counts[value] = n
        else:
            self.other += n

    def merge(self, other: Categories) -> None:
        """Add ``other``'s counts, then keep the top values (ties by value) so the cap holds."""
        counts = self.counts
        for value, n in other.counts.items():
            counts[value] = counts.get(value, 0) + n
        self.other += other.other
        if len(counts) > CATEGORY_CAP:
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            self.counts = dict(ranked[:CATEGORY_CAP])
            self.other += sum(n for _, n in ranked[CATEGORY_CAP:])

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + self.other


class FeatureState:
    """One feature in one bucket: numeric values (KLL), categorical values (counts), and nulls.

    New numbers wait in ``pending`` until the sketch is read or written. Going up from a minute to its
    hour and day, a few values are cheaper passed on as values (a sketch update is ~0.1 µs a value)
    and many as the minute's sketch (a merge is ~0.5 µs): :data:`MERGE_AT` is where that turns.
    """

    __slots__ = ("_num", "cats", "nulls", "pending")

    def __init__(self) -> None:
        self._num: kll_doubles_sketch | None = None
        self.pending: list[float] = []
        self.cats = Categories()
        self.nulls = 0

    @property
    def num(self) -> kll_doubles_sketch | None:
        """The numeric values' sketch (None if there are none), with every pending value in it."""
        self.settle()
        return self._num

    @num.setter
    def num(self, sketch: kll_doubles_sketch | None) -> None:
        self._num = sketch

    def settle(self) -> None:
        """Put the pending values into the sketch."""
        if self.pending:
            if self._num is None:
                self._num = new_kll()
            update = self._num.update
            for value in self.pending:
                update(value)
            self.pending = []

    def add_number(self, value: float) -> None:
        self.pending.append(value)

    @property
    def numbers(self) -> int:
        return (0 if self._num is None else int(self._num.n)) + len(self.pending)

    def merge(self, other: FeatureState) -> None:
        if len(other.pending) >= MERGE_AT:
            other.settle()  # cheaper merged as one sketch than updated value by value at each level up
        elif other.pending:
            self.pending.extend(other.pending)
        if other._num is not None:
            self._num = merge_kll(self._num, other._num)
        self.cats.merge(other.cats)
        self.nulls += other.nulls


class _Wire(msgspec.Struct, array_like=True, omit_defaults=True):
    format: int
    volume: int = 0
    errors: int = 0
    payloads: int = 0
    rows: int = 0
    latency: bytes | None = None
    out_num: bytes | None = None
    out_cats: dict[str, int] = {}
    out_other: int = 0
    features: dict[str, tuple[bytes | None, dict[str, int], int, int]] = {}
    confusion: dict[str, dict[str, int]] = {}
    reg_n: int = 0
    reg_abs: float = 0.0
    reg_sq: float = 0.0
    reviewed: int = 0
    overridden: int = 0
    delay: bytes | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Wire).decode


class BucketState:
    """Everything the monitor keeps for one scope over one bucket (or a merge of buckets)."""

    __slots__ = (
        "confusion", "delay", "errors", "features", "latency", "out_cats", "out_num", "overridden",
        "payloads", "reg_abs", "reg_n", "reg_sq", "reviewed", "rows", "volume",
    )  # fmt: skip

    def __init__(self) -> None:
        self.volume = 0  # inference entries
        self.errors = 0  # of which status "error"
        self.payloads = 0  # entries whose payload (input, output, label) fed this bucket
        self.rows = 0  # input rows seen (an OIP batch of n is n rows): the denominator of missing rates
        self.latency: kll_doubles_sketch | None = None
        self.out_num: kll_doubles_sketch | None = None  # numeric outputs (regressors, scores)
        self.out_cats = Categories()  # class outputs
        self.features: dict[str, FeatureState] = {}
        self.confusion: dict[str, dict[str, int]] = {}  # label -> prediction -> count
        self.reg_n = 0
        self.reg_abs = 0.0
        self.reg_sq = 0.0
        self.reviewed = 0  # feedback entries that are a human review (an override or a verification)
        self.overridden = 0  # of which the human's decision differs from the model's output
        self.delay: kll_doubles_sketch | None = None  # seconds from inference to feedback

    # -- building -----------------------------------------------------------------------------

    def feature(self, name: str) -> FeatureState:
        state = self.features.get(name)
        if state is None:
            state = self.features[name] = FeatureState()
        return state

    def add_latency(self, ms: float) -> None:
        if self.latency is None:
            self.latency = new_kll()
        self.latency.update(ms)

    def add_latencies(self, values: Iterable[float]) -> None:
        if self.latency is None:
            self.latency = new_kll()
        update = self.latency.update
        for value in values:
            update(value)

    def add_output_numbers(self, values: Iterable[float]) -> None:
        if self.out_num is None:
            self.out_num = new_kll()
        update = self.out_num.update
        for value in values:
            update(value)

    def add_output_number(self, value: float) -> None:
        if self.out_num is None:
            self.out_num = new_kll()
        self.out_num.update(value)

    def add_pair(self, label: str, prediction: str) -> None:
        row = self.confusion.setdefault(label, {})
        row[prediction] = row.get(prediction, 0) + 1

    def add_error(self, label: float, prediction: float) -> None:
        diff = label - prediction
        self.reg_n += 1
        self.reg_abs += abs(diff)
        self.reg_sq += diff * diff

    def add_delay(self, seconds: float) -> None:
        if self.delay is None:
            self.delay = new_kll()
        self.delay.update(seconds)

    def merge(self, other: BucketState) -> BucketState:
        """Merge ``other`` into this state (which changes) and return it."""
        self.volume += other.volume
        self.errors += other.errors
        self.payloads += other.payloads
        self.rows += other.rows
        self.latency = merge_kll(self.latency, other.latency)
        self.out_num = merge_kll(self.out_num, other.out_num)
        self.out_cats.merge(other.out_cats)
        for name, feature in other.features.items():
            self.feature(name).merge(feature)
        for label, row in other.confusion.items():
            mine = self.confusion.setdefault(label, {})
            for prediction, n in row.items():
                mine[prediction] = mine.get(prediction, 0) + n
        self.reg_n += other.reg_n
        self.reg_abs += other.reg_abs
        self.reg_sq += other.reg_sq
        self.reviewed += other.reviewed
        self.overridden += other.overridden
        self.delay = merge_kll(self.delay, other.delay)
        return self

    # -- reading ------------------------------------------------------------------------------

    @property
    def labeled(self) -> int:
        return sum(sum(row.values()) for row in self.confusion.values())

    def latency_quantile(self, q: float) -> float | None:
        return (
            None if self.latency is None or self.latency.is_empty() else float(self.latency.get_quantile(q))
        )

    # -- bytes --------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        wire = _Wire(
            format=FORMAT, volume=self.volume, errors=self.errors, payloads=self.payloads, rows=self.rows,
            latency=_kll_bytes(self.latency), out_num=_kll_bytes(self.out_num),
            out_cats=self.out_cats.counts, out_other=self.out_cats.other,
            features={
                name: (_kll_bytes(f.num), f.cats.counts, f.cats.other, f.nulls)
                for name, f in sorted(self.features.items())
            },
            confusion=self.confusion, reg_n=self.reg_n, reg_abs=self.reg_abs, reg_sq=self.reg_sq,
            reviewed=self.reviewed, overridden=self.overridden, delay=_kll_bytes(self.delay),
        )  # fmt: skip
        return _encode(wire)

    @classmethod
    def from_bytes(cls, data: bytes, parts: frozenset[str] = ALL) -> BucketState:
        """The state in ``data``; of the sketches, only the ``parts`` asked for (see :data:`ALL`).

        Quantile sketches cost microseconds each to read and to merge: a query for an error rate
        over a month should not pay for every feature's sketch.
        """
        wire = _decode(data)
        state = cls()
        if wire.format != FORMAT:
            raise ValueError(
                f"rollup format {wire.format}, this inferlog reads {FORMAT}: run `inferlog monitor rebuild`"
            )
        state.volume, state.errors, state.payloads, state.rows = (
            wire.volume,
            wire.errors,
            wire.payloads,
            wire.rows,
        )
        if "latency" in parts:
            state.latency = _kll_of(wire.latency)
        if "outputs" in parts:
            state.out_num = _kll_of(wire.out_num)
            state.out_cats = Categories(dict(wire.out_cats), wire.out_other)
        every = "features" in parts
        for name, (num, counts, other, nulls) in wire.features.items():
            if not every and f"feature:{name}" not in parts:
                continue
            feature = state.feature(name)
            feature.num = _kll_of(num)
            feature.cats = Categories(dict(counts), other)
            feature.nulls = nulls
        state.confusion = {label: dict(row) for label, row in wire.confusion.items()}
        state.reg_n, state.reg_abs, state.reg_sq = wire.reg_n, wire.reg_abs, wire.reg_sq
        state.reviewed, state.overridden = wire.reviewed, wire.overridden
        if "delay" in parts:
            state.delay = _kll_of(wire.delay)
        return state


def merged(states: Iterable[BucketState]) -> BucketState:
    """A new state holding the merge of ``states`` (none of which changes)."""
    total = BucketState()
    for state in states:
        total.merge(state)
    return total


def finite(value: Any) -> bool:
    """A number a sketch can take: int or float (not bool), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
