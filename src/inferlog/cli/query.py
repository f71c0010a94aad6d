"""Reading commands: ``query`` (filtered pages), ``show`` (one entry, whole), ``tail`` (and ``-f``)."""

from __future__ import annotations

from typing import Any

import click

from inferlog.cli._common import (
    State,
    console,
    entries_table,
    filter_options,
    json_line,
    pass_state,
    pretty_json,
    purpose_option,
    summary_line,
)
from inferlog.cli.traces import show_session, show_trace
from inferlog.errors import NotFound, UsageError
from inferlog.export.jsonl import export_dict
from inferlog.query import build_query, follow_pages, iter_entries, last_entries
from inferlog.record.model import kind_of
from inferlog.store.base import MAX_PAGE, Query

PAYLOAD_KINDS = ("inference", "feedback")


@click.command("query")
@filter_options
@click.option("--limit", type=int, default=20, show_default=True, help="Entries per page.")
@click.option("--cursor", type=int, help="Continue from a cursor a previous page printed.")
@click.option("--order", type=click.Choice(["asc", "desc"]), default="asc", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.option(
    "--ids",
    "ids_only",
    is_flag=True,
    help="Print only the ids, one a line: inferlog show $(inferlog query --limit 1 --ids).",
)
@purpose_option
@pass_state
def query_command(
    state: State,
    /,
    limit: int,
    cursor: int | None,
    order: str,
    as_json: bool,
    ids_only: bool,
    purpose: str,
    **options: Any,
) -> None:
    """Find entries, one page at a time.

    Filter by system, model, time, ids, subject or attributes.

    The cursor to read the next page from is printed on stderr.
    """
    query = build_query(limit=limit, cursor=cursor, order=order, **state.filters(options))
    page = state.store().query(query)
    state.audit("query", purpose, query, page.entries)
    entries = state.reveal(page.entries)
    if ids_only:
        for stored in entries:
            click.echo(stored.id)
    elif as_json:
        for stored in entries:
            click.echo(json_line(stored))
    elif entries:
        out = console()
        out.print(entries_table(entries, out.width))
    else:
        click.echo("no entries match", err=True)
    if page.next_cursor is not None:
        click.echo(f"next cursor: {page.next_cursor}  (add --cursor {page.next_cursor})", err=True)


@click.command("show")
@click.argument("entry_id", metavar="[ID]", required=False)
@click.option(
    "--trace", "trace_id", metavar="TRACE_ID", help="Show every entry of this trace, as its call tree."
)
@click.option(
    "--session", "session_id", metavar="SESSION_ID", help="Show every trace of this session, as trees."
)
@purpose_option
@pass_state
def show_command(
    state: State, /, entry_id: str | None, trace_id: str | None, session_id: str | None, purpose: str
) -> None:
    """Show one entry whole, with its leaf hash and feedback; or a trace or session as a tree."""
    if [entry_id, trace_id, session_id].count(None) != 2:
        raise UsageError("give one of: an entry ID, --trace TRACE_ID, --session SESSION_ID")
    if trace_id is not None:
        show_trace(state, trace_id, purpose)
        return
    if session_id is not None:
        show_session(state, session_id, purpose)
        return
    if entry_id is None:  # not reached (one of the three is given): for the type checker
        raise UsageError("give an entry ID")
    store = state.store()
    stored = store.get(entry_id.strip().lower())
    if stored is None:
        raise NotFound(f"no entry with id {entry_id!r} in {state.db}")
    # Reviews of an inference are filed under its system: any writer can name any id in inference_id.
    about = Query(inference_id=stored.id, kind="feedback", system=stored.entry.system, limit=MAX_PAGE)
    reviews = list(iter_entries(store, about)) if kind_of(stored.entry) == "inference" else []
    state.audit("show", purpose, Query(system=stored.entry.system), [stored, *reviews])
    stored = state.reveal([stored])[0]
    data = export_dict(stored)
    data["leaf_hash"] = stored.leaf_hash.hex()
    if reviews:
        data["feedback"] = [export_dict(item) for item in state.reveal(reviews)]
    out = console()
    if out.is_terminal:
        out.print_json(pretty_json(data))
    else:
        click.echo(pretty_json(data))


@click.command("tail")
@filter_options
@click.option("-n", "--lines", "count", type=click.IntRange(0, MAX_PAGE), default=10, show_default=True,
              help="How many of the latest entries to print first.")  # fmt: skip
@click.option(
    "-f", "--follow", "keep_following", is_flag=True, help="Keep printing new entries (Ctrl-C stops)."
)
@click.option("--interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds between polls with --follow.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@purpose_option
@pass_state
def tail_command(
    state: State, /, count: int, keep_following: bool, interval: float, as_json: bool, purpose: str,
    **options: Any,
) -> None:  # fmt: skip
    """Print the latest entries; -f keeps printing new ones."""
    query = build_query(limit=MAX_PAGE, **state.filters(options))
    store = state.store()
    latest, head = last_entries(store, query, count)
    own = state.audit("tail", purpose, query, latest)  # this command's trail is not echoed back
    show = json_line if as_json else summary_line
    for stored in latest:
        click.echo(show(stored))
    if not keep_following:
        return
    try:
        for page in follow_pages(store, query.next(head), interval=interval):
            fresh = [stored for stored in page if stored.id not in own]
            if any(kind_of(stored.entry) in PAYLOAD_KINDS for stored in fresh):
                own |= state.audit("tail", purpose, query, fresh)
            for stored in fresh:
                click.echo(show(stored))
    except KeyboardInterrupt:
        return


COMMANDS = [query_command, show_command, tail_command]
