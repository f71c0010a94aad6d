"""Input/output schemas of model versions, kept in the log so drift checks, exports and auditors know
what each field of a record means.

A schema is OIP's tensor metadata shape: ``{"inputs": [{"name", "datatype"?, "shape"?}], "outputs":
[...]}``. It is put on record as a ``model.schema`` admin entry (system ``*``) whose details are the
model's name and version, the ``source`` that said it (``oip``: a server's model metadata;
``sklearn``: a fitted estimator; ``user``: given by hand), the inputs and outputs, and the SHA-256 of
their canonical JSON. The entry's id is derived from (name, version, sha256), so capturing the same
schema again writes nothing: :func:`record_schema` finds the entry by that id and returns it.

A model version's schema should not change. A *different* schema for the same (name, version) from
the same source is kept all the same (the log keeps what happened) and :func:`model_schemas` flags
the version ``changed``; ``inferlog models list`` and ``show`` say "schema changed". The latest
schema of a version is the one shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from inferlog.errors import RecordInvalid
from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid8
from inferlog.record.model import AdminEntry
from inferlog.record.validate import check_model, checked
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.paging import iter_entries
from inferlog.store.protocols import EntryReader, EntryStore

MODEL_SCHEMA = "model.schema"
SchemaSource = Literal["oip", "sklearn", "user"]
SCHEMA_SOURCES: tuple[SchemaSource, ...] = ("oip", "sklearn", "user")
MAX_FIELDS = 10_000  # inputs, and outputs, each
NAME_MAX_LENGTH = 256
_LOG_SYSTEM = "*"


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """The schema of one model version as recorded; ``changed``: its source gave another one before."""

    name: str
    version: str
    source: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    sha256: str
    actor: str | None = None
    ts: dt.datetime | None = None
    entry_id: str | None = None
    changed: bool = False

    def details(self) -> dict[str, Any]:
        """The admin entry's ``details``."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "sha256": self.sha256,
        }

    def public_view(self) -> dict[str, Any]:
        """What the CLI and ``GET /v1/models`` show."""
        return {
            **self.details(),
            "recorded_by": self.actor,
            "recorded_at": self.ts.isoformat() if self.ts else None,
            "entry_id": self.entry_id,
            "changed": self.changed,
        }


def _fields(value: Any, where: str) -> list[dict[str, Any]]:
    """One side of a schema (inputs or outputs), checked field by field, in a canonical form."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordInvalid(f"must be a list of fields, got {type(value).__name__}", field=where)
    if len(value) > MAX_FIELDS:
        raise RecordInvalid(f"must have at most {MAX_FIELDS} fields, got {len(value)}", field=where)
    out = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise RecordInvalid(f"must be an object with a name, got {type(item).__name__}", field=at)
        name = item.get("name")
        if not isinstance(name, str) or not name or len(name) > NAME_MAX_LENGTH or "\x00" in name:
            raise RecordInvalid(f"must be a string of 1 to {NAME_MAX_LENGTH} characters", field=f"{at}.name")
        field: dict[str, Any] = {"name": name}
        datatype = item.get("datatype")
        if datatype is not None:
            if not isinstance(datatype, str) or not 0 < len(datatype) <= NAME_MAX_LENGTH:
                raise RecordInvalid(
                    f"must be a string of 1 to {NAME_MAX_LENGTH} characters", field=f"{at}.datatype"
                )
            field["datatype"] = datatype
        shape = item.get("shape")
        if shape is not None:
            if not isinstance(shape, list) or not all(type(d) is int for d in shape) or len(shape) > 64:
                raise RecordInvalid(
                    "must be a list of at most 64 integers (-1: any size)", field=f"{at}.shape"
                )
            field["shape"] = shape
        extra = sorted(set(item) - {"name", "datatype", "shape"})
        if extra:
            raise RecordInvalid(f"unknown keys {', '.join(map(repr, extra))}", field=at)
        out.append(field)
    return out


def check_schema(schema: Any) -> dict[str, list[dict[str, Any]]]:
    """``{"inputs": [...], "outputs": [...]}`` checked and canonical; RecordInvalid naming the field."""
    if not isinstance(schema, Mapping):
        raise RecordInvalid(
            f"must be an object with inputs and outputs, got {type(schema).__name__}", field="schema"
        )
    extra = sorted(set(schema) - {"inputs", "outputs"})
    if extra:
        raise RecordInvalid(f"unknown keys {', '.join(map(repr, extra))}", field="schema")
    checked_schema = {
        "inputs": _fields(schema.get("inputs"), "schema.inputs"),
        "outputs": _fields(schema.get("outputs"), "schema.outputs"),
    }
    if not checked_schema["inputs"] and not checked_schema["outputs"]:
        raise RecordInvalid("must describe at least one input or output", field="schema")
    return checked_schema


def schema_sha256(schema: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a checked schema's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(dict(schema), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def schema_entry_id(name: str, version: str, sha256: str) -> str:
    """The id of the ``model.schema`` entry of this schema of this version: the same each time."""
    return uuid8(MODEL_SCHEMA, name, version, sha256)


def oip_schema(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schema in an OIP model metadata answer (``GET /v2/models/{name}``), None if it has none.

    Each tensor keeps its ``name``, ``datatype`` and ``shape``; anything else it carries (``parameters``)
    is left out.
    """
    inputs, outputs = metadata.get("inputs"), metadata.get("outputs")
    if not inputs and not outputs:
        return None

    def tensors(value: Any) -> Any:
        if not isinstance(value, list):
            return value  # refused by check_schema, naming the field
        return [
            {k: v for k, v in t.items() if k in ("name", "datatype", "shape")}
            if isinstance(t, Mapping)
            else t
            for t in value
        ]

    return {"inputs": tensors(inputs or []), "outputs": tensors(outputs or [])}


def sklearn_schema(estimator: Any) -> dict[str, Any] | None:
    """A fitted scikit-learn estimator's schema: one input per feature, ``predict`` as the output.

    Feature names come from ``feature_names_in_`` (fitted on a DataFrame), else ``x0``.. ``x{n-1}``
    from ``n_features_in_``; None if the estimator says neither (not fitted). A classifier's output
    carries its classes' datatype (the dtype of ``classes_``).
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        inputs = [{"name": str(n)} for n in list(names)]
    else:
        count = getattr(estimator, "n_features_in_", None)
        if not isinstance(count, numbers.Integral):
            return None
        inputs = [{"name": f"x{i}"} for i in range(int(count))]
    output: dict[str, Any] = {"name": "predict"}
    classes = getattr(estimator, "classes_", None)
    dtype = getattr(classes, "dtype", None)
    if dtype is not None:
        output["datatype"] = str(dtype)
        output["shape"] = [-1]
    return {"inputs": inputs, "outputs": [output]}


def record_schema(
    store: EntryStore, name: str, version: str, schema: Any, *, source: str, actor: str | None
) -> ModelSchema:
    """Put the schema of (name, version) on record, unless this very schema already is (then: that one).

    ``source`` is ``oip``, ``sklearn`` or ``user``. A different schema for a version is recorded too
    (and :func:`model_schemas` flags the version ``changed``).
    """
    if source not in SCHEMA_SOURCES:
        raise RecordInvalid(f"must be one of {', '.join(SCHEMA_SOURCES)}, got {source!r}", field="source")
    check_model(name, version)
    canonical = check_schema(schema)
    sha = schema_sha256(canonical)
    entry_id = schema_entry_id(name, version, sha)
    known = store.get(entry_id)
    if known is not None and isinstance(known.entry, AdminEntry):
        found = _from_entry(known.entry)
        if found is not None:
            return found
    made = ModelSchema(name, version, source, canonical["inputs"], canonical["outputs"], sha, actor,
                       dt.datetime.now(dt.UTC), entry_id)  # fmt: skip
    entry = AdminEntry(
        id=entry_id, system=_LOG_SYSTEM, ts=made.ts or dt.datetime.now(dt.UTC), actor=actor,
        action=MODEL_SCHEMA, details=made.details(),
    )  # fmt: skip
    store.append(Pipeline().prepare_all([checked(entry)]))
    return made


def _from_entry(entry: AdminEntry) -> ModelSchema | None:
    d = entry.details
    name, version, source, sha = d.get("name"), d.get("version"), d.get("source"), d.get("sha256")
    inputs, outputs = d.get("inputs"), d.get("outputs")
    if not all(isinstance(v, str) for v in (name, version, source, sha)):
        return None  # not one this module wrote: ignored rather than trusted
    if not (isinstance(inputs, list) and isinstance(outputs, list)):
        return None
    return ModelSchema(str(name), str(version), str(source), inputs, outputs, str(sha), entry.actor,
                       entry.ts, entry.id)  # fmt: skip


def model_schemas(store: EntryReader) -> list[ModelSchema]:
    """The latest schema of each model version on record, in order of first capture, each flagged
    ``changed`` when one source gave the version more than one schema."""
    latest: dict[tuple[str, str], ModelSchema] = {}
    seen: dict[tuple[str, str, str], set[str]] = {}
    for stored in iter_entries(store, Query(kind="admin", system=_LOG_SYSTEM, limit=MAX_PAGE)):
        entry = stored.entry
        if isinstance(entry, AdminEntry) and entry.action == MODEL_SCHEMA:
            found = _from_entry(entry)
            if found is not None:
                latest[(found.name, found.version)] = found
                seen.setdefault((found.name, found.version, found.source), set()).add(found.sha256)
    changed = {(n, v) for (n, v, _), shas in seen.items() if len(shas) > 1}
    return [
        ModelSchema(**{**_as_kwargs(s), "changed": (s.name, s.version) in changed}) for s in latest.values()
    ]


def _as_kwargs(schema: ModelSchema) -> dict[str, Any]:
    return {name: getattr(schema, name) for name in ModelSchema.__slots__}
