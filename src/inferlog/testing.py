"""Helpers for testing code that records inferences (and for inferlog's own tests).

from inferlog.testing import make_record, temporary_log, CapturingTransport
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid7
from inferlog.record.model import Entry, InferenceRecord, Model
from inferlog.record.prepared import Prepared
from inferlog.sdk import open as open_log
from inferlog.sdk.client import Log
from inferlog.sdk.transport import CapturingTransport

__all__ = ["CapturingTransport", "capturing_log", "make_record", "prepare", "temporary_log"]


def make_record(**overrides: Any) -> InferenceRecord:
    """A valid inference record; any field can be overridden."""
    fields: dict[str, Any] = {
        "id": uuid7(),
        "system": "test-system",
        "ts": dt.datetime.now(dt.UTC),
        "model": Model("test-model", "1.0.0"),
        "input": {"x": 1.5, "y": [1, 2, 3]},
        "output": {"label": "yes", "score": 0.9},
        "latency_ms": 3.5,
    }
    fields.update(overrides)
    if isinstance(fields["model"], dict):
        fields["model"] = msgspec.convert(fields["model"], Model)
    return InferenceRecord(**fields)


def prepare(*records: Entry) -> list[Prepared]:
    """Entries as the store receives them (canonical body, salt, leaf)."""
    return Pipeline().prepare_all(records)


@contextmanager
def temporary_log(path: str | Path | None = None, **options: Any) -> Iterator[Log]:
    """A Log on a SQLite file in a temporary folder (or ``path``), closed on exit."""
    with tempfile.TemporaryDirectory(prefix="inferlog-") as tmp:
        folder = Path(path) if path is not None else Path(tmp)
        options.setdefault("system", "test-system")
        log = open_log(f"sqlite:///{folder / 'log.db'}", spool_dir=folder / "spool", **options)
        try:
            yield log
        finally:
            log.close()


@contextmanager
def capturing_log(path: str | Path | None = None, **options: Any) -> Iterator[tuple[Log, CapturingTransport]]:
    """A Log whose records land in memory (``transport.entries``) instead of a store."""
    with tempfile.TemporaryDirectory(prefix="inferlog-") as tmp:
        transport = CapturingTransport()
        options.setdefault("system", "test-system")
        log = Log(transport, spool_dir=Path(path or tmp) / "spool", **options)
        try:
            yield log, transport
        finally:
            log.close()
