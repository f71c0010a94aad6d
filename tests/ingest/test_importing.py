"""``import_lines`` from Python: the library call behind ``inferlog import``."""

from __future__ import annotations

import io
from pathlib import Path

from inferlog.ingest.importing import MAX_PROBLEMS, import_lines
from inferlog.store import open_store

LINE = '{"system": "s", "model": {"name": "m", "version": "1"}, "input": [%d], "ts": "2026-01-01T00:00:00Z"}'
BAD = '{"system": "s", "model": {"name": 5, "version": "1"}}'


def _lines(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def test_counts_new_then_duplicate_entries(tmp_path: Path) -> None:
    """A stream imports once: the report counts its entries new, and the same stream again duplicate."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        first = import_lines(store, _lines(LINE % 1, LINE % 2, "", LINE % 3))
        again = import_lines(store, _lines(LINE % 1, LINE % 2, "", LINE % 3))
        assert (first.new, first.duplicate, first.refused) == (3, 0, False)
        assert (again.new, again.duplicate, again.refused) == (0, 3, False)
        assert store.size() == 3
    finally:
        store.close()


def test_a_bad_line_refuses_the_stream_and_says_where(tmp_path: Path) -> None:
    """One bad line: nothing is written, the report is refused and names the line by the stream's name."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        report = import_lines(store, _lines(LINE % 1, BAD), name="in.jsonl")
        assert report.refused
        assert report.bad_lines == {2}
        assert report.problems[0].startswith("in.jsonl: line 2: field `model.name`")
        assert (report.new, report.skipped, store.size()) == (0, 0, 0)
    finally:
        store.close()


def test_skip_invalid_counts_what_it_leaves_out(tmp_path: Path) -> None:
    """With skip_invalid the good lines go in and every bad one is counted, though only a few are spelled out."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        bad = [BAD] * (MAX_PROBLEMS + 2)
        report = import_lines(store, _lines(LINE % 1, *bad, LINE % 2), skip_invalid=True)
        assert (report.new, report.skipped, report.refused) == (2, MAX_PROBLEMS + 2, False)
        assert len(report.problems) == MAX_PROBLEMS
        assert store.size() == 2
    finally:
        store.close()
