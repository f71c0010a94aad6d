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
import math
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

    def fold_rows(self, state: BucketState, system: str, rows: list[dict[str, Any]]) -> None:
        """Fold feature rows (from an input, or a reference data set) into ``state``.

        The hot loop of the fold: plain types are told apart by ``type()`` (an ``isinstance`` against
        the number ABCs costs more than the rest of the step), anything else goes through
        :func:`~inferlog.monitor.features.classify`.
        """
        _, wanted, categorical = self._config(system)
        protects = self.masker.protects
        features = state.features
        state.rows += len(rows)
        for row in rows:
            if wanted is not None:
                names: Any = sorted(wanted.intersection(row))
            elif len(row) > ft.MAX_FEATURES:
                names = sorted(row)[: ft.MAX_FEATURES]
            else:
                names = row
            for name in names:
                value = row[name]
                kind = type(value)
                if kind is float:
                    if value != value:  # NaN
                        kind_name, value = "null", None
                    elif value in (math.inf, -math.inf):
                        continue
                    else:
                        kind_name = "num"
                elif kind is int:
                    kind_name = "num"
                elif kind is str:
                    if len(value) > ft.MAX_CATEGORY_LENGTH:
                        continue
                    kind_name = "cat"
                elif value is None:
                    kind_name = "null"
                else:
                    kind_name, value = ft.classify(value)
                    if kind_name == "skip":
                        continue
                feature = features.get(name)
                if feature is None:
                    feature = state.feature(name)
                if kind_name == "num" and name not in categorical:
                    feature.add_number(value)
                elif kind_name == "null":
                    feature.nulls += 1
                else:
                    text = ft.class_label(value) if kind_name == "num" else value
                    if text is None:
                        continue
                    feature.cats.add(self.masker.mask(text) if protects(system, "input", name) else text)

    def inference(self, state: BucketState, entry: InferenceRecord, has_body: bool) -> None:
        """Fold one inference: always its metadata; its payload when there is one to read."""
        state.volume += 1
        if entry.status == "error":
            state.errors += 1
        if not has_body:
            return
        state.payloads += 1
        if entry.latency_ms is not None:
            state.add_latency(entry.latency_ms)
        system = entry.system
        if entry.input is not None and not _unreadable(entry, "input"):
            self.fold_rows(state, system, ft.rows_of(entry.input))
        if entry.status == "ok" and entry.output is not None and not _unreadable(entry, "output"):
            task = self._config(system)[0].task
            masked = self.masker.protects(system, "output")
            for value in ft.predictions(entry.output):
                if (
                    task != "classification"
                    and finite(value)
                    and (task == "regression" or isinstance(value, float))
                ):
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
