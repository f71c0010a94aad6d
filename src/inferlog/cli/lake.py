"""``inferlog export --to DIR``: the lake face of the export command (the work is in ``inferlog.export.lake``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from inferlog.cli._common import State, console
from inferlog.errors import UsageError
from inferlog.export.lake import export_to_lake, parse_partition_by
from inferlog.query import build_query


def lake_export(
    state: State,
    to: Path,
    fmt: str | None,
    partition_by: str | None,
    stated_purpose: str | None,
    sealed: bool,
    given: dict[str, bool],
    options: dict[str, Any],
) -> None:
    """Add the entries logged since the lake's last run to ``to``; on record as an access entry.

    Sealed fields are revealed only when the user stated a purpose (``stated_purpose``), did not
    ask for ``--sealed`` and the policy's key store is readable; otherwise they stay ciphertext,
    so an erasure shreds them in the lake too.
    """
    if fmt not in (None, "parquet"):
        raise UsageError(f"a lake is Parquet: leave out --format {fmt} (or give --output for a {fmt} file)")
    refused = [name for name, present in given.items() if present]
    if refused:
        raise UsageError(
            f"{' and '.join(refused)}: not for a lake, where each run continues from the lake's own cursor"
        )
    keys = parse_partition_by(partition_by) if partition_by is not None else None
    query = build_query(**state.filters(options))
    store = state.store()
    reveal = None
    if stated_purpose is not None and not sealed and state.protection().opener is not None:
        reveal = state.reveal
    err = console(stderr=True)
    with Progress(
        TextColumn("adding to the lake"), TextColumn("{task.completed} entries"), TimeElapsedColumn(),
        console=err, disable=not err.is_terminal, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("lake", total=None)
        run = export_to_lake(
            store, to, query=query, partition_by=keys, reveal=reveal,
            progress=lambda rows: progress.update(task, completed=rows),
        )  # fmt: skip
    spec = run.spec
    fields = "revealed" if spec.revealed else "sealed"
    state.audit(
        "export", stated_purpose or "export", query, run.by_system, format="parquet", output=str(to),
        lake=True, partition_by=",".join(spec.partition_by), after_seq=run.started_after,
        cursor=run.cursor, sealed=not spec.revealed,
    )  # fmt: skip
    click.echo(
        f"added {run.rows} entries in {run.files} files to {to} "
        f"(a lake partitioned by {','.join(spec.partition_by)}; sealed fields {fields}; cursor at seq {run.cursor})",
        err=True,
    )
