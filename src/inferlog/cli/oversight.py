"""``inferlog periods`` and ``inferlog verifications``: when a system was in use, who verified a match."""

from __future__ import annotations

import json

import click
from rich.table import Table

from inferlog.cli._common import State, console, inert, pass_state, printable, purpose_option
from inferlog.errors import NotFound
from inferlog.query.filters import parse_since
from inferlog.query.oversight import periods, verification
from inferlog.record.model import kind_of
from inferlog.store.base import Query


@click.command("periods")
@click.option("--system", help="Only this AI system.")
@click.option("--since", help="Started or ended from this time on: 30m, 1h, 7d or ISO-8601 (UTC if no zone).")
@click.option("--until", help="Started or ended before this time: same forms as --since.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per period.")
@purpose_option
@pass_state
def periods_command(
    state: State, /, system: str | None, since: str | None, until: str | None, as_json: bool, purpose: str
) -> None:
    """Periods of use: when each system was in use, as its operator declared.

    Pairs the period.started and period.ended admin entries (written by log.period() or over HTTP).
    A period still open has no end; one begun before --since has no start.
    """
    found = periods(
        state.store(),
        system=system,
        since=parse_since(since) if since else None,
        until=parse_since(until, name="until") if until else None,
    )
    counts: dict[str, int] = {}
    for period in found:
        counts[period.system] = counts.get(period.system, 0) + 1
    state.audit("periods", purpose, Query(system=system, kind="admin"), counts)
    if as_json:
        for period in found:
            click.echo(json.dumps(period.to_dict()))
        return
    table = Table(title=f"{len(found)} period(s) of use", title_justify="left")
    for column in ("system", "start", "end", "purpose", "actor", "id"):
        table.add_column(column)
    for period in found:
        row = period.to_dict()
        table.add_row(
            *(inert(str(row[name] if row[name] is not None else "-")) for name in ("system", "start")),
            inert(str(row["end"])) if row["end"] else "[yellow]open[/]",
            *(inert(str(row[name] or "-")) for name in ("purpose", "actor", "id")),
        )
    console().print(table)


@click.command("verifications")
@click.argument("inference_id")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
@purpose_option
@pass_state
def verifications_command(state: State, /, inference_id: str, as_json: bool, purpose: str) -> None:
    """Who verified one inference's result, and whether two distinct persons confirmed it.

    Counts feedback entries with a verification, each person once (AI Act Art. 14(5)).
    Exits 1 when the result is not two-person verified.
    """
    stored = state.store().get(inference_id)
    if stored is None or kind_of(stored.entry) != "inference":
        raise NotFound(f"no inference with id {inference_id}")
    system = stored.entry.system
    result = verification(state.store(), inference_id, system=system)
    state.audit(
        "verification", purpose, Query(system=system, inference_id=inference_id, kind="feedback"),
        {system: len(result.confirmed_by) + len(result.rejected_by)},
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(f"confirmed by: {', '.join(map(printable, result.confirmed_by)) or '-'}")
        click.echo(f"rejected by:  {', '.join(map(printable, result.rejected_by)) or '-'}")
        click.echo(f"two-person verified: {'yes' if result.two_person else 'no'}")
    if not result.two_person:
        raise click.exceptions.Exit(1)


COMMANDS = [periods_command, verifications_command]
