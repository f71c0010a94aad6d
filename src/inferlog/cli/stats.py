"""``inferlog stats``: what is in the log, by kind, status, system and model, with latency percentiles."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from inferlog.cli._common import State, console, filter_options, inert, pass_state
from inferlog.lineage import registered_models, unregistered
from inferlog.query import build_query
from inferlog.store.base import Query
from inferlog.store.protocols import EntryReader


@click.command("stats")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON document.")
@pass_state
def stats_command(state: State, /, as_json: bool, **options: Any) -> None:
    """Counts, error rates and latency percentiles.

    By kind, status, system and model version; filters narrow what is counted. Model versions seen in
    records but not registered (``inferlog models register``), ``unversioned`` ones included, are flagged.
    """
    store = state.store()
    numbers = store.stats(build_query(**state.filters(options)))
    numbers["unregistered"] = unregistered(numbers["models"], registered_models(store))
    numbers["dead_letters"] = dead_letters(store)
    if as_json:
        click.echo(json.dumps(numbers, indent=2))
        return
    out = console()
    out.print(_overview(numbers))
    for title, key in (("by kind", "by_kind"), ("by status", "by_status"), ("by system", "by_system")):
        if numbers.get(key):
            out.print(_counts(title, numbers[key]))
    if numbers.get("models"):
        out.print(_models(numbers["models"], numbers["unregistered"]))
    if numbers["dead_letters"]:
        out.print(
            f"[red]{numbers['dead_letters']} message(s) from the broker could not be stored[/red] and were "
            "dead-lettered by `inferlog worker` (see: inferlog query --kind admin --attr dead_letter=true)"
        )
    if numbers["unregistered"]:
        out.print(
            f"[yellow]{len(numbers['unregistered'])} model version(s) seen in records are not registered[/yellow]"
            " (no digest or lineage from the registry): inferlog models register NAME VERSION --digest ..."
        )


def dead_letters(store: EntryReader) -> int:
    """How many broker messages workers dead-lettered: each is a ``broker.dead_letter`` admin entry with
    ``attributes.dead_letter = true`` (see inferlog.worker.deadletter; not imported: it needs nats-py)."""
    found = store.stats(Query(kind="admin", attributes={"dead_letter": True}))
    return int(found.get("entries", 0))


def _overview(numbers: dict[str, Any]) -> Table:
    table = Table(title="log", show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("entries matching", str(numbers.get("entries", 0)))
    table.add_row("entries in the log", str(numbers.get("size", 0)))
    table.add_row("first", str(numbers.get("first_ts") or "-"))
    table.add_row("last", str(numbers.get("last_ts") or "-"))
    for name, value in (numbers.get("latency_ms") or {}).items():
        table.add_row(f"latency {name}", f"{value:.2f} ms")
    return table


def _counts(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.removeprefix("by "))
    table.add_column("entries", justify="right")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        table.add_row(inert(name), str(count))
    return table


def _models(models: list[dict[str, Any]], unknown: list[dict[str, Any]]) -> Table:
    table = Table(title="inferences by model", title_justify="left")
    for column in ("model", "version"):
        table.add_column(column)
    for column in ("inferences", "errors", "error rate"):
        table.add_column(column, justify="right")
    table.add_column("registered")
    missing = {(row["model"], row["version"]) for row in unknown}
    for row in models:
        rate = row["errors"] / row["count"] if row["count"] else 0.0
        registered = "[yellow]no[/yellow]" if (row["model"], row["version"]) in missing else "yes"
        table.add_row(
            inert(row["model"]),
            inert(row["version"]),
            str(row["count"]),
            str(row["errors"]),
            f"{rate:.1%}",
            registered,
        )
    return table


COMMANDS = [stats_command]
