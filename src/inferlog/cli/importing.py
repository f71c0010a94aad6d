"""``inferlog import``: JSON lines into the log, all or nothing (see :mod:`inferlog.ingest.importing`)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import click

from inferlog.cli._common import State, pass_state
from inferlog.errors import UsageError
from inferlog.ingest.importing import MAX_PROBLEMS, ImportReport, import_lines


@click.command("import")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--system", help="System for lines that do not name one.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--skip-invalid", is_flag=True, help="Import the good lines and report the bad ones.")
@pass_state
def import_command(
    state: State, /, source: str, system: str | None, batch_size: int, skip_invalid: bool
) -> None:
    """Import entries from JSON lines, all or nothing.

    Reads a file, or stdin with -, such as an `export --format jsonl`.

    Every line is checked before anything is written: one bad line and nothing is imported.
    Importing the same file again adds nothing.
    """
    with _opened(source) as (stream, name):
        report = import_lines(
            state.store(must_exist=False), stream, system=system, batch_size=batch_size,
            skip_invalid=skip_invalid, name=name, protection=state.protection() if state.config else None,
        )  # fmt: skip
    _print_report(report, name)


@contextmanager
def _opened(source: str) -> Iterator[tuple[IO[bytes], str]]:
    """The input, seekable, and the name problems give it; stdin is copied to a temporary file first.

    The import reads its input twice (check, then append), which a pipe cannot do.
    """
    if source != "-":
        with open(source, "rb") as stream:
            yield stream, source
        return
    if sys.stdin.isatty():
        raise UsageError("give a FILE, or pipe JSON lines in: inferlog import - < entries.jsonl")
    with tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy)
        yield copy, "stdin"


def _print_report(report: ImportReport, name: str) -> None:
    """The counts on stdout; bad lines and conflicts on stderr, ending in one error line if any."""
    bad = len(report.bad_lines)
    if report.refused:
        if bad == 1:
            raise UsageError(f"{report.problems[0]}; nothing was imported")
        for problem in report.problems:
            click.echo(problem, err=True)
        more = f" (first {MAX_PROBLEMS} above)" if bad > MAX_PROBLEMS else " (above)"
        raise UsageError(f"{bad} bad lines in {name}{more}; nothing was imported")
    for problem in report.problems:
        click.echo(click.style(f"skipped {problem}", fg="yellow"), err=True)
    parts = [f"{report.new} new", f"{report.duplicate} duplicate"]
    if report.skipped:
        parts.append(f"{report.skipped} invalid skipped")
    click.echo(f"imported {name}: {', '.join(parts)}")
    if report.conflicts:
        for conflict in report.conflicts[:MAX_PROBLEMS]:
            click.echo(f"conflict: {conflict}", err=True)
        raise UsageError(f"{len(report.conflicts)} entries conflict with entries written meanwhile")


COMMANDS = [import_command]
