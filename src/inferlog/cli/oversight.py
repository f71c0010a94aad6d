"""``inferlog periods`` and ``inferlog verifications``: when a system was in use, who verified a match."""

from __future__ import annotations

import datetime as dt
import json

import click
from rich.table import Table

from inferlog.cli._common import State, console, inert, pass_state, printable, purpose_option
from inferlog.errors import NotFound, UsageError
from inferlog.query.filters import parse_since
from inferlog.query.oversight import biometric_uses, periods, verification
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
    start, end = _window(since, until)
    found = periods(state.store(), system=system, since=start, until=end)
    counts: dict[str, int] = {}
    for period in found:
        counts[period.system] = counts.get(period.system, 0) + 1
    state.audit("periods", purpose, Query(system=system, kind="admin", since=start, until=end), counts)
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
@click.argument("inference_id", required=False)
@click.option("--system", help="List the biometric uses of this AI system (instead of one INFERENCE_ID).")
@click.option("--since", help="Uses from this time on: 30m, 1h, 7d or ISO-8601 (UTC if no zone).")
@click.option("--until", help="Uses before this time: same forms as --since.")
@click.option("--database", help="Only uses checked against this reference database (by name).")
@click.option("--unverified", is_flag=True, help="Only matches not confirmed by two distinct persons.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per use when listing).")
@purpose_option
@pass_state
def verifications_command(
    state: State,
    /,
    inference_id: str | None,
    system: str | None,
    since: str | None,
    until: str | None,
    database: str | None,
    unverified: bool,
    as_json: bool,
    purpose: str,
) -> None:
    """Who verified a biometric match, and whether two distinct persons confirmed it.

    With INFERENCE_ID: that inference's verifications. With --system: every biometric use in the
    window, each with its verifiers. Counts feedback entries with a verification, each person once
    (AI Act Art. 14(5)). Exits 1 when a match shown is not two-person verified.
    """
    if (inference_id is None) == (system is None):
        raise UsageError("name one INFERENCE_ID, or list a system's uses with --system")
    if inference_id is None:
        _list_uses(state, system or "", since, until, database, unverified, as_json, purpose)
        return
    if since or until or database or unverified:
        raise UsageError("--since, --until, --database and --unverified list uses: give --system, not an id")
    stored = state.store().get(inference_id)
    if stored is None or kind_of(stored.entry) != "inference":
        raise NotFound(f"no inference with id {inference_id}")
    owner = stored.entry.system
    result = verification(state.store(), inference_id, system=owner)
    state.audit(
        "verification", purpose, Query(system=owner, inference_id=inference_id, kind="feedback"),
        {owner: len(result.confirmed_by) + len(result.rejected_by)},
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(f"confirmed by: {', '.join(map(printable, result.confirmed_by)) or '-'}")
        click.echo(f"rejected by:  {', '.join(map(printable, result.rejected_by)) or '-'}")
        click.echo(f"two-person verified: {'yes' if result.two_person else 'no'}")
    if not result.two_person:
        raise click.exceptions.Exit(1)


def _window(since: str | None, until: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The --since/--until window, parsed: what is read and what the access entry records."""
    return (
        parse_since(since) if since else None,
        parse_since(until, name="until") if until else None,
    )


def _list_uses(
    state: State,
    system: str,
    since: str | None,
    until: str | None,
    database: str | None,
    unverified: bool,
    as_json: bool,
    purpose: str,
) -> None:
    start, end = _window(since, until)
    uses = biometric_uses(
        state.store(), system=system, since=start, until=end, database=database, unverified=unverified
    )
    state.audit(
        "biometric", purpose, Query(system=system, kind="inference", since=start, until=end), {system: len(uses)},
        database=database, unverified=unverified,
    )  # fmt: skip
    if as_json:
        for use in uses:
            click.echo(json.dumps(use.to_dict()))
    else:
        table = Table(title=f"{len(uses)} biometric use(s)", title_justify="left")
        for column in ("seq", "started", "database", "match", "confirmed by", "rejected by", "two persons"):
            table.add_column(column)
        for use in uses:
            row = use.to_dict()
            bio = row["biometric"] if isinstance(row["biometric"], dict) else {}
            table.add_row(
                str(row["seq"]), inert(str(bio.get("period", {}).get("start", ""))),
                inert(str(bio.get("reference_database", {}).get("name", ""))), "yes" if use.matched else "no",
                inert(", ".join(use.verification.confirmed_by)), inert(", ".join(use.verification.rejected_by)),
                "yes" if use.verification.two_person else ("[red]NO[/]" if use.matched else "-"),
            )  # fmt: skip
        console().print(table)
    if any(use.matched and not use.verification.two_person for use in uses):
        raise click.exceptions.Exit(1)


COMMANDS = [periods_command, verifications_command]
