"""Folding entries into bucket states: an inference's metadata, features and outputs; a label's pairing.

Pure apart from the key it is given. What goes in:

- every inference counts in volume and errors, and its latency in the latency sketch;
- its payload, when the store still has it and (if sealed) the key store opens it: input features,
  output distribution;
- a feedback entry, joined to its inference (logged before it): the (label, prediction) pair for
  classification or regression metrics, whether a human review overrode the output, the label delay.

Nothing personal goes into a rollup as such: a categorical value of a field the privacy policy
redacts, pseudonymizes or encrypts is kept only as a keyed digest (``#`` + 16 hex digits), which tells
values apart (so drift and accuracy still work) without saying what they were.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from inferlog.monitor import features as ft
from inferlog.monitor.policy import FeatureConfig, MonitoringPolicy
from inferlog.monitor.sketch import BucketState, finite
from inferlog.privacy.policy import Policy
from inferlog.record.model import Entry, FeedbackEntry, InferenceRecord

ENCRYPTED_PREFIX = "ilenc1:"


class Masker:
    """Says which fields a privacy policy protects, and masks their categorical values with a keyed digest."""

    def __init__(self, privacy: Policy | None, key: bytes) -> None:
        self._privacy = privacy
        self._key = key
        self._paths: dict[str, tuple[str, ...]] = {}
        self._cache: dict[tuple[str, str], bool] = {}

    def _protected_paths(self, system: str) -> tuple[str, ...]:
        paths = self._paths.get(system)
        if paths is None:
            if self._privacy is None:
                paths = ()
            else:
                rules = self._privacy.for_system(system)
                found = [*rules.encrypt, *rules.pseudonymize]
                for rule in rules.redact:
                    found.extend(rule.paths)
                paths = tuple(found)
            self._paths[system] = paths
        return paths

    def protects(self, system: str, field: str, feature: str | None = None) -> bool:
        """Whether ``field`` (``input``, ``output``, ``label``, ...) or the feature under it is protected."""
        cache_key = (system, f"{field}\x00{feature or ''}")
        found = self._cache.get(cache_key)
        if found is None:
            found = False
            for path in self._protected_paths(system):
                below = path.startswith(field + ".")
                reaches = feature is None or "*" in path or path == f"{field}.{feature}"
                if path in ("*", field) or (
                    below and (reaches or path.startswith((f"{field}.inputs", f"{field}.{feature}.")))
                ):
                    found = True
                    break
            self._cache[cache_key] = found
        return found

    def mask(self, value: str) -> str:
        return "#" + hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def _unreadable(entry: Entry, field: str) -> bool:
    """Whether a still-sealed entry (its keys gone or not given) hides ``field`` or part of it."""
    sealed = entry.sealed
    return sealed is not None and any(p == field or p.startswith(field + ".") for p in sealed.fields)


class Gathered:
    """One bucket's inferences, gathered in log order: counted at once, their payloads kept for :meth:`Folder.flush`.

    Folding column by column (all of a bucket's values of one feature at once) is what makes the fold
    cheap: a column of floats goes into the sketch's buffer in one step, a column of strings is
    counted by :class:`collections.Counter`, instead of a type test and a call per value.
    """

    __slots__ = ("inputs", "latencies", "outputs", "state", "system")

    def __init__(self, system: str) -> None:
        self.system = system
        self.state = BucketState()
        self.latencies: list[float] = []
        self.inputs: list[Any] = []  # inputs whose features feed the bucket
        self.outputs: list[Any] = []  # outputs of successful inferences


_FLAT = frozenset({float, int, str, bool, type(None)})  # value types of an input that is one flat row
_NUMBERS = frozenset({float, int})
_STRINGS = frozenset({str})
_NULLS = frozenset({type(None)})
_INTS = frozenset({int})


def _all_finite(column: Sequence[Any]) -> bool:
    """Whether a column of ints and floats holds no NaN or infinity (their sum then is finite)."""
    try:
        total = sum(column)
    except OverflowError:  # an int too large for a float, beside floats: the per-value path decides
        return False
    return bool(total - total == 0)


class Folder:
    """Folds entries into :class:`BucketState` s under a monitoring policy and a privacy masker."""

    def __init__(self, policy: MonitoringPolicy, masker: Masker) -> None:
        self.policy = policy
        self.masker = masker
        self._configs: dict[str, tuple[FeatureConfig, frozenset[str] | None, frozenset[str]]] = {}

    def _config(self, system: str) -> tuple[FeatureConfig, frozenset[str] | None, frozenset[str]]:
        found = self._configs.get(system)
        if found is None:
            config = self.policy.features_of(system)
            wanted = frozenset(config.features) if config.features is not None else None
            found = self._configs[system] = (config, wanted, frozenset(config.categorical))
        return found

    # -- inferences ---------------------------------------------------------------------------

    def inference(self, into: Gathered, entry: InferenceRecord, has_body: bool) -> None:
        """Gather one inference: its metadata counts now, its payload (when there is one to read) at flush."""
        state = into.state
        state.volume += 1
        if entry.status == "error":
            state.errors += 1
        if not has_body:
            return
        state.payloads += 1
        if entry.latency_ms is not None:
            into.latencies.append(entry.latency_ms)
        if entry.input is not None and not _unreadable(entry, "input"):
            into.inputs.append(entry.input)
        if entry.status == "ok" and entry.output is not None and not _unreadable(entry, "output"):
            into.outputs.append(entry.output)

    def flush(self, into: Gathered) -> BucketState:
        """Fold what ``into`` gathered into its state, column-wise, and return the state."""
        state = into.state
        if into.latencies:
            state.add_latencies(into.latencies)
            into.latencies = []
        if into.inputs:
            self.fold_inputs(state, into.system, into.inputs)
            into.inputs = []
        if into.outputs:
            self.fold_outputs(state, into.system, into.outputs)
            into.outputs = []
        return state

    def flush_all(self, gathered: Sequence[Gathered]) -> None:
        """:meth:`flush` many buckets at once: a batch's buckets of one system share their columns.

        A minute bucket holds a dozen entries or so; a column's checks (its types, its finiteness)
        cost the same for a dozen values as for ten thousand, so they are made once over the whole
        batch, and each bucket takes its slice. Buckets whose inputs are not all flat objects of the
        same fields (or outputs not all one-key objects of the same key) are folded one by one.
        """
        by_system: dict[str, list[Gathered]] = {}
        for into in gathered:
            if into.latencies:
                into.state.add_latencies(into.latencies)
                into.latencies = []
            by_system.setdefault(into.system, []).append(into)
        for system, group in by_system.items():
            if not self._fold_input_columns(system, group):
                for into in group:
                    if into.inputs:
                        self.fold_inputs(into.state, system, into.inputs)
            if not self._fold_output_column(system, group):
                for into in group:
                    if into.outputs:
                        self.fold_outputs(into.state, system, into.outputs)
            for into in group:
                into.inputs, into.outputs = [], []

    def _fold_input_columns(self, system: str, group: Sequence[Gathered]) -> bool:
        """Fold every bucket's inputs from columns over the whole batch; False (nothing done) if they differ."""
        inputs: list[Any] = []
        bounds = [0]
        for into in group:
            inputs.extend(into.inputs)
            bounds.append(len(inputs))
        if not inputs:
            return True
        first = inputs[0]
        if type(first) is not dict or not first or set(map(type, inputs)) != {dict}:
            return False
        keys = tuple(first)
        size = len(keys)
        if not all(len(row) == size for row in inputs):
            return False
        try:
            if size == 1:
                transposed: list[Sequence[Any]] = [list(map(operator.itemgetter(keys[0]), inputs))]
            else:
                transposed = list(zip(*map(operator.itemgetter(*keys), inputs), strict=True))
        except KeyError:
            return False
        types = [set(map(type, column)) for column in transposed]
        if not all(_FLAT.issuperset(found) for found in types):
            return False  # nested objects or lists: rows_of flattens them, bucket by bucket
        for into, start, end in zip(group, bounds, bounds[1:], strict=False):
            into.state.rows += end - start
        names = self._names(system, first)
        where = {key: i for i, key in enumerate(keys)}
        categorical = self._config(system)[2]
        for name in names:
            i = where[name]
            column, found = transposed[i], types[i]
            if found <= _NUMBERS and name not in categorical and (found == _INTS or _all_finite(column)):
                for into, start, end in zip(group, bounds, bounds[1:], strict=False):
                    if end > start:
                        into.state.feature(name).pending.extend(column[start:end])
            elif found == _STRINGS and max(map(len, column)) <= ft.MAX_CATEGORY_LENGTH:
                self._count(group, bounds, column, name, self.masker.protects(system, "input", name))
            elif found == _NULLS:
                for into, start, end in zip(group, bounds, bounds[1:], strict=False):
                    if end > start:
                        into.state.feature(name).nulls += end - start
            else:
                for into, start, end in zip(group, bounds, bounds[1:], strict=False):
                    if end > start:
                        self._fold_column(into.state, system, name, column[start:end])
        return True

    def _count(
        self,
        group: Sequence[Gathered],
        bounds: list[int],
        column: Sequence[str],
        name: str | None,
        masked: bool,
    ) -> None:
        """Count a column of strings into each bucket's categories (a feature's, or with no name the outputs')."""
        owners = [i for i, (start, end) in enumerate(itertools.pairwise(bounds)) for _ in range(end - start)]
        masks: dict[str, str] = {}
        for (i, value), n in Counter(zip(owners, column, strict=True)).items():
            state = group[i].state
            cats = state.out_cats if name is None else state.feature(name).cats
            if masked:
                digest = masks.get(value)
                if digest is None:
                    digest = masks[value] = self.masker.mask(value)
                value = digest
            cats.add(value, n)

    def _fold_output_column(self, system: str, group: Sequence[Gathered]) -> bool:
        """Fold every bucket's outputs as one column when each is an object with the same one prediction
        key and a plain value under it (``{"prediction": 1}``); False (nothing done) otherwise."""
        outputs: list[Any] = []
        bounds = [0]
        for into in group:
            outputs.extend(into.outputs)
            bounds.append(len(outputs))
        if not outputs:
            return True
        first = outputs[0]
        if type(first) is not dict or len(first) != 1 or set(map(type, outputs)) != {dict}:
            return False
        (key,) = first
        if not all(len(output) == 1 for output in outputs):
            return False
        try:
            values = list(map(operator.itemgetter(key), outputs))
        except KeyError:
            return False
        found = set(map(type, values))
        if not _FLAT.issuperset(found):
            return False  # tensors, lists, objects: predictions() reads them, bucket by bucket
        task = self._config(system)[0].task
        masked = self.masker.protects(system, "output")
        if (
            task != "classification"
            and found <= _NUMBERS
            and (task == "regression" or found == {float})
            and _all_finite(values)
        ):
            for into, start, end in zip(group, bounds, bounds[1:], strict=False):
                if end > start:
                    into.state.add_output_numbers(values[start:end])
        elif task != "regression" and found == _INTS:  # class numbers: ``1`` is class "1"
            self._count(group, bounds, list(map(str, values)), None, masked)
        elif task != "regression" and found == _STRINGS and max(map(len, values)) <= ft.MAX_CATEGORY_LENGTH:
            self._count(group, bounds, values, None, masked)
        else:
            for into, start, end in zip(group, bounds, bounds[1:], strict=False):
                for value in values[start:end]:
                    self._fold_output(into.state, task, masked, value)
        return True

    # -- features -----------------------------------------------------------------------------

    def fold_inputs(self, state: BucketState, system: str, inputs: Sequence[Any]) -> None:
        """Fold inputs' features: a flat object is its own row (no copy); anything else goes through
        :func:`~inferlog.monitor.features.rows_of`."""
        rows: list[Mapping[str, Any]] = []
        flat = _FLAT.issuperset
        for value in inputs:
            if type(value) is dict and flat(map(type, value.values())):
                if value:
                    rows.append(value)
            else:
                rows.extend(ft.rows_of(value))
        self.fold_rows(state, system, rows)

    def fold_rows(self, state: BucketState, system: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Fold feature rows (from inputs, or a reference data set) into ``state``, one column at a time.

        Each feature's values keep the order of the rows, so capped category counts come out exactly
        as folding value by value would make them.
        """
        if not rows:
            return
        state.rows += len(rows)
        for name, column in self._columns(system, rows):
            self._fold_column(state, system, name, column)

    def _names(self, system: str, row: Mapping[str, Any]) -> Sequence[str]:
        """The features of one row: the policy's (sorted), else the row's own (the first 200, sorted, if more)."""
        wanted = self._config(system)[1]
        if wanted is not None:
            return sorted(wanted.intersection(row))
        if len(row) > ft.MAX_FEATURES:
            return sorted(row)[: ft.MAX_FEATURES]
        return tuple(row)

    def _columns(self, system: str, rows: Sequence[Mapping[str, Any]]) -> Iterable[tuple[str, Sequence[Any]]]:
        first = rows[0]
        keys = tuple(first)
        size = len(keys)
        if size and all(len(row) == size for row in rows):
            # Rows of the same fields (the common case) are transposed in C; a row that lacks one of
            # the first row's fields raises KeyError, and the rows are then taken one by one below.
            try:
                if size == 1:
                    transposed: list[Sequence[Any]] = [list(map(operator.itemgetter(keys[0]), rows))]
                else:
                    transposed = list(zip(*map(operator.itemgetter(*keys), rows), strict=True))
            except KeyError:
                pass
            else:
                names = self._names(system, first)
                if names == keys:
                    return zip(keys, transposed, strict=True)
                where = {key: i for i, key in enumerate(keys)}
                return [(name, transposed[where[name]]) for name in names]
        columns: dict[str, list[Any]] = {}
        for row in rows:
            for name in self._names(system, row):
                column = columns.get(name)
                if column is None:
                    column = columns[name] = []
                column.append(row[name])
        return columns.items()

    def _fold_column(self, state: BucketState, system: str, name: str, column: Sequence[Any]) -> None:
        """One feature's values: a column of one plain type in one step, any other value by value."""
        types = set(map(type, column))
        if types <= _NUMBERS and name not in self._config(system)[2]:
            if types == _INTS or _all_finite(column):
                state.feature(name).pending.extend(column)
                return
        elif types == _STRINGS:
            if max(map(len, column)) > ft.MAX_CATEGORY_LENGTH:
                column = [v for v in column if len(v) <= ft.MAX_CATEGORY_LENGTH]
                if not column:
                    return
            cats = state.feature(name).cats
            counted = Counter(column)
            if self.masker.protects(system, "input", name):
                for value, n in counted.items():
                    cats.add(self.masker.mask(value), n)
            else:
                for value, n in counted.items():
                    cats.add(value, n)
            return
        elif types == _NULLS:
            state.feature(name).nulls += len(column)
            return
        for value in column:
            self._fold_value(state, system, name, value)

    def _fold_value(self, state: BucketState, system: str, name: str, value: Any) -> None:
        """One value of a feature, its type told apart by ``type()`` (cheaper than the number ABCs)."""
        kind = type(value)
        if kind is float:
            if value != value:  # NaN
                kind_name, value = "null", None
            elif value in (math.inf, -math.inf):
                return
            else:
                kind_name = "num"
        elif kind is int:
            kind_name = "num"
        elif kind is str:
            if len(value) > ft.MAX_CATEGORY_LENGTH:
                return
            kind_name = "cat"
        elif value is None:
            kind_name = "null"
        else:
            kind_name, value = ft.classify(value)
            if kind_name == "skip":
                return
        feature = state.feature(name)
        if kind_name == "num" and name not in self._config(system)[2]:
            feature.add_number(value)
        elif kind_name == "null":
            feature.nulls += 1
        else:
            text = ft.class_label(value) if kind_name == "num" else value
            if text is None:
                return
            feature.cats.add(self.masker.mask(text) if self.masker.protects(system, "input", name) else text)

    # -- outputs ------------------------------------------------------------------------------

    def fold_outputs(self, state: BucketState, system: str, outputs: Sequence[Any]) -> None:
        """Fold successful outputs' predictions: numbers into the output sketch, classes into counts.

        With no task in the policy, a float is a score (a number) and anything else a class.
        """
        values: list[Any] = []
        for output in outputs:
            values.extend(ft.predictions(output))
        if not values:
            return
        task = self._config(system)[0].task
        masked = self.masker.protects(system, "output")
        types = set(map(type, values))
        if (
            task != "classification"
            and types <= _NUMBERS
            and (task == "regression" or types == {float})
            and _all_finite(values)
        ):
            state.add_output_numbers(values)
            return
        if task != "regression" and types == _INTS:  # class numbers: ``1`` is class "1"
            counted = Counter(map(str, values))
        elif task != "regression" and types == _STRINGS and max(map(len, values)) <= ft.MAX_CATEGORY_LENGTH:
            counted = Counter(values)
        else:
            for value in values:
                self._fold_output(state, task, masked, value)
            return
        cats = state.out_cats
        for label, n in counted.items():
            cats.add(self.masker.mask(label) if masked else label, n)

    def _fold_output(self, state: BucketState, task: str | None, masked: bool, value: Any) -> None:
        if task != "classification" and finite(value) and (task == "regression" or isinstance(value, float)):
            state.add_output_number(float(value))
        elif task != "regression":
            label = ft.class_label(value)
            if label is not None:
                state.out_cats.add(self.masker.mask(label) if masked else label)

    def feedback(self, state: BucketState, entry: FeedbackEntry, inference: InferenceRecord) -> None:
        """Fold one feedback entry (with a body) about ``inference`` (with a body) into its bucket."""
        state.payloads += 1
        system = inference.system
        delay = (entry.ts - inference.ts).total_seconds()
        if delay >= 0:
            state.add_delay(delay)
        if _unreadable(inference, "output"):
            return
        predicted = ft.prediction(inference.output) if inference.status == "ok" else None
        if entry.override is not None and not _unreadable(entry, "override"):
            state.reviewed += 1
            if ft.class_label(ft.label_of(entry.override)) != ft.class_label(predicted):
                state.overridden += 1
        elif entry.verification is not None:
            state.reviewed += 1
        if entry.label is None or predicted is None or _unreadable(entry, "label"):
            return
        label = ft.label_of(entry.label)
        task = self._config(system)[0].task
        if task != "classification" and finite(label) and finite(predicted):
            state.add_error(float(label), float(predicted))
        if task == "regression" or (task is None and _fractional(label, predicted)):
            return
        truth, guess = ft.class_label(label), ft.class_label(predicted)
        if truth is None or guess is None:
            return
        if self.masker.protects(system, "output") or self.masker.protects(system, "label"):
            truth, guess = self.masker.mask(truth), self.masker.mask(guess)
        state.add_pair(truth, guess)


def _fractional(*values: Any) -> bool:
    """Whether any value is a float with a fractional part (a regression target, not a class)."""
    return any(isinstance(v, float) and not v.is_integer() for v in values)
