"""``inferlog export``: matching entries to a JSONL, CSV or Parquet file, or onto a Parquet lake."""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from inferlog.cli._common import State, console, filter_options, pass_state
from inferlog.cli.lake import lake_export
from inferlog.errors import UsageError
from inferlog.export import exporters, get_exporter
from inferlog.export.base import Destination
from inferlog.export.lake import DEFAULT_PARTITION_BY, PARTITION_KEYS
from inferlog.query import build_query, iter_entries
from inferlog.record.model import StoredEntry
from inferlog.store.base import MAX_PAGE, MAX_SEQ

_UNFILTERED = {"limit", "order", "after"}


@click.command("export")
@click.option(
    "-f", "--format", "fmt", metavar="FORMAT",
    help="jsonl, csv, parquet (or a plugin's format); default: from the output's file name.",
)  # fmt: skip
@click.option("-o", "--output", metavar="PATH", help="File to write ('-' = stdout for jsonl, csv).")
@click.option(
    "--to", "to", metavar="DIR",
    help="Add the entries logged since the last run to a Hive-partitioned Parquet lake in DIR (made if new).",
)  # fmt: skip
@click.option(
    "--partition-by", metavar="KEYS",
    help=f"With --to: folders by {', '.join(PARTITION_KEYS)}, comma-separated, in nesting order "
    f"(default: the lake's own, or {','.join(DEFAULT_PARTITION_BY)}).",
)  # fmt: skip
@filter_options
@click.option("--cursor", type=int, help="Start after this seq.")
@click.option("--limit", type=click.IntRange(1, MAX_SEQ), help="Write at most this many entries.")
@click.option("--order", type=click.Choice(["asc", "desc"]), default="asc", show_default=True)
@click.option(
    "--purpose", default="export", show_default=True, callback=lambda ctx, param, value: _purpose(value),
    help="Why the data leaves the log; kept, with who and how many, in an access entry.",
)  # fmt: skip
@click.option(
    "--sealed", is_flag=True,
    help="Keep sealed fields as ciphertext (an erasure then shreds this file too); default: plaintext "
    "when the policy's key store is readable (with --to: only for a purpose you state).",
)  # fmt: skip
@pass_state
def export_command(
    state: State, /, fmt: str | None, output: str | None, to: str | None, partition_by: str | None,
    cursor: int | None, limit: int | None, order: str, purpose: str, sealed: bool, **options: Any,
) -> None:  # fmt: skip
    """Write matching entries to a JSONL, CSV or Parquet file, or add them to a Parquet lake.

    Without filters, the whole log: for auditors, DuckDB, pandas or Spark. With --to DIR, each run
    adds the inference and feedback entries logged since the last one to a Hive-partitioned dataset
    (system=S/date=D folders) that DuckDB, pyarrow and Spark read; a run that dies is redone by the
    next, every entry once. The export itself is recorded in the log as an access entry (who, what
    query, how many, for what purpose).
    """
    if to is not None:
        if output is not None:
            raise UsageError("give --output FILE or --to DIR, not both")
        stated = click.get_current_context().get_parameter_source("purpose") is not ParameterSource.DEFAULT
        given = {"--cursor": cursor is not None, "--limit": limit is not None, "--order": order != "asc"}
        lake_export(state, Path(to), fmt, partition_by, purpose if stated else None, sealed, given, options)
        return
    if output is None:
        raise UsageError("give --output FILE (or --to DIR for a lake)")
    if partition_by is not None:
        raise UsageError("--partition-by is for a lake: give --to DIR instead of --output")
    exporter = get_exporter(fmt or _format_of(output))
    if output == "-" and not exporter.streams:
        raise UsageError(f"{exporter.name} cannot be written to stdout: give --output a file name")
    query = build_query(limit=MAX_PAGE, cursor=cursor, order=order, **state.filters(options))
    store = state.store()
    entries: Iterable[StoredEntry] = iter_entries(store, query)
    if limit is not None:
        entries = itertools.islice(entries, limit)
    by_system: Counter[str] = Counter()
    entries = _tallied(entries, by_system)
    if not sealed:
        entries = _revealed(state, entries)
    total = None
    if set(query.describe()) <= _UNFILTERED:  # a count is free only when nothing is filtered
        size = store.size()
        total = max(0, size - query.after if order == "asc" else (query.after or size + 1) - 1)
        total = min(total, limit) if limit is not None else total
    destination: Destination = sys.stdout.buffer if output == "-" else Path(output)
    err = console(stderr=True)
    with Progress(
        TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, disable=not err.is_terminal, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("export", total=total)
        count = exporter.write(_counting(entries, progress, task), destination)
    where = "stdout" if output == "-" else output
    state.audit("export", purpose, query, by_system, format=exporter.name, output=where, sealed=sealed)
    click.echo(f"exported {count} entries to {where} ({exporter.name})", err=True)


def _tallied(entries: Iterable[StoredEntry], by_system: Counter[str]) -> Iterator[StoredEntry]:
    """The entries, counted per system as they pass (the export's access entries need the counts)."""
    for stored in entries:
        by_system[stored.entry.system] += 1
        yield stored


def _revealed(state: State, entries: Iterable[StoredEntry]) -> Iterator[StoredEntry]:
    """Sealed entries opened (a thousand at a time) when the policy's key store is at hand."""
    if state.protection().opener is None:
        yield from entries
        return
    for chunk in _chunks(entries):
        yield from state.reveal(chunk)


def _chunks(entries: Iterable[StoredEntry]) -> Iterator[list[StoredEntry]]:
    iterator = iter(entries)
    while chunk := list(itertools.islice(iterator, 1000)):
        yield chunk


def _counting(entries: Iterable[StoredEntry], progress: Progress, task: Any) -> Iterator[StoredEntry]:
    number = 0
    for number, stored in enumerate(entries, 1):
        yield stored
        if number % 1000 == 0:
            progress.update(task, completed=number)
    progress.update(task, completed=number)


def _purpose(value: str) -> str:
    """The purpose as an access entry can keep it (1 to 256 characters): a longer one stored would make
    every later read of the access trail fail."""
    if not 1 <= len(value) <= 256:
        raise click.BadParameter(f"must be 1 to 256 characters, got {len(value)}")
    return value


def _format_of(output: str) -> str:
    suffix = Path(output).suffix.lower()
    for name in exporters():
        exporter = get_exporter(name)
        if suffix and exporter.suffix == suffix:
            return name
    raise UsageError(f"say which format with --format ({', '.join(exporters())}); {output!r} does not tell")


COMMANDS = [export_command]
