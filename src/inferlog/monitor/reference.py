"""Drift references: a period of the log, or a data set profiled once into the same sketches as a bucket.

A data set (a Parquet or CSV file, a pandas DataFrame, a pyarrow Table; one column per feature, one
row per input) is read once and kept as its sketches only, under ``reference:<name>`` beside the
rollups, so it survives restarts and holds no rows. A reference is named in a request by:

- the name of a kept data set (``inferlog monitor reference add``, ``POST /v1/monitor/references``,
  :func:`add_reference`);
- the name of a ``[monitoring.references.<name>]`` of the policy file: a period of one system's log,
  or a file next to the policy file;
- an ISO-8601 interval ``<since>/<until>``: that period of the same system and model.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from inferlog.errors import BadParameter, NotFound, UsageError
from inferlog.monitor.fold import Folder
from inferlog.monitor.policy import MonitoringPolicy, ReferenceSpec
from inferlog.monitor.sketch import BucketState
from inferlog.monitor.source import Scope
from inferlog.store.protocols import RollupStore

PREFIX = "reference:"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FORMATS = ("parquet", "csv")
Window = Callable[[Scope, dt.datetime, dt.datetime], BucketState]


@dataclass(frozen=True)
class Reference:
    """A kept reference data set: its name, the system it is for, where it came from, how many rows."""

    name: str
    system: str | None
    source: str
    rows: int
    created: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "system": self.system, "source": self.source, "rows": self.rows,
            "created": self.created.isoformat(),
        }  # fmt: skip


class _Kept(msgspec.Struct):
    system: str | None
    source: str
    rows: int
    created: dt.datetime
    state: bytes


def read_table(data: Any, fmt: str | None = None) -> Any:
    """A pyarrow Table from a path (``.parquet``/``.csv``), bytes of either format, a DataFrame or a Table."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise UsageError("reference data sets need pyarrow: pip install 'inferlog[parquet]'") from exc
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # a pandas DataFrame
        return pa.Table.from_pandas(data, preserve_index=False)
    try:
        table = None
        if isinstance(data, bytes):
            if fmt not in FORMATS:
                raise BadParameter(f"must be one of {', '.join(FORMATS)}", field="format")
            buffer = io.BytesIO(data)
            table = pq.read_table(buffer) if fmt == "parquet" else pcsv.read_csv(buffer)
        elif isinstance(data, str | Path):
            path = Path(data)
            kind = fmt or path.suffix.lower().lstrip(".").replace("pq", "parquet")
            if kind not in FORMATS:
                raise UsageError(f"{path}: a reference is a .parquet or .csv file")
            if not path.is_file():
                raise UsageError(f"{path}: no such file")
            table = pq.read_table(path) if kind == "parquet" else pcsv.read_csv(path)
        if table is not None:
            table.column_names  # noqa: B018 - pyarrow checks a column name's UTF-8 only when it is read
            return table
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise BadParameter(f"not a readable {fmt or 'Parquet/CSV'} data set: {exc}", field="file") from exc
    raise UsageError(
        f"a reference is a DataFrame, a pyarrow Table or a Parquet/CSV path, not {type(data).__name__}"
    )


def profile(folder: Folder, table: Any, system: str | None) -> BucketState:
    """The sketches of a table's rows, as the fold would make them from inputs of ``system``."""
    state = BucketState()
    for batch in table.to_batches(max_chunksize=10_000):
        folder.fold_rows(state, system or "*", batch.to_pylist())
    return state


class ReferenceStore:
    """Kept references (in the store) and the policy's, resolved to the sketches drift compares with."""

    def __init__(
        self, store: RollupStore, folder: Folder, policy: MonitoringPolicy, base_dir: Path | None
    ) -> None:
        self._store = store
        self._folder = folder
        self._policy = policy
        self._base = base_dir or Path.cwd()
        self._files: dict[tuple[Path, float], BucketState] = {}

    def add(
        self,
        name: str,
        data: Any,
        *,
        system: str | None = None,
        fmt: str | None = None,
        source: str | None = None,
    ) -> Reference:
        """Profile a data set and keep it as ``name`` (replacing one of that name)."""
        if not NAME.match(name):
            raise BadParameter("a reference name is 1-64 letters, digits, '.', '_' or '-'", field="name")
        table = read_table(data, fmt)
        state = profile(self._folder, table, system)
        where = source or (str(data) if isinstance(data, str | Path) else type(data).__name__)
        kept = _Kept(system, where, table.num_rows, dt.datetime.now(dt.UTC), state.to_bytes())
        self._store.put_monitor_value(PREFIX + name, msgspec.msgpack.encode(kept))
        return Reference(name, system, where, table.num_rows, kept.created)

    def remove(self, name: str) -> bool:
        if self._store.monitor_value(PREFIX + name) is None:
            return False
        self._store.put_monitor_value(PREFIX + name, None)
        return True

    def list(self) -> list[Reference]:
        found = []
        for key in self._store.monitor_values(PREFIX):
            kept = self._kept(key)
            if kept is not None:
                found.append(Reference(key[len(PREFIX) :], kept.system, kept.source, kept.rows, kept.created))
        return found

    def _kept(self, key: str) -> _Kept | None:
        raw = self._store.monitor_value(key)
        return None if raw is None else msgspec.msgpack.decode(raw, type=_Kept)

    def state(self, name: str, scope: Scope, window: Window) -> BucketState:
        """The sketches of reference ``name`` for comparisons in ``scope``."""
        kept = self._kept(PREFIX + name) if NAME.match(name) else None
        if kept is not None:
            return BucketState.from_bytes(kept.state)
        spec = self._policy.references.get(name)
        if spec is not None:
            return self._spec(spec, scope, window)
        if "/" in name:
            since, _, until = name.partition("/")
            try:
                start, end = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (since, until))
            except ValueError:
                raise BadParameter(
                    f"{name!r} is not an ISO-8601 interval <since>/<until>", field="reference"
                ) from None
            if start.tzinfo is None or end.tzinfo is None or end <= start:
                raise BadParameter(
                    "a period reference needs timezone-aware ends, since < until", field="reference"
                )
            return window(Scope(scope.system, scope.model), start, end)
        raise NotFound(
            f"no reference {name!r} (kept data sets: {', '.join(r.name for r in self.list()) or 'none'})"
        )

    def _spec(self, spec: ReferenceSpec, scope: Scope, window: Window) -> BucketState:
        if spec.file is not None:
            path = spec.file if spec.file.is_absolute() else self._base / spec.file
            if not path.is_file():
                raise UsageError(f"reference {spec.name}: no file {path}")
            key = (path, path.stat().st_mtime)
            if key not in self._files:
                self._files[key] = profile(self._folder, read_table(path), spec.system)
            return self._files[key]
        start = spec.since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        end = spec.until or dt.datetime.now(dt.UTC)
        return window(Scope(spec.system, scope.model if scope.system == spec.system else None), start, end)
