"""``inferlog monitor``: the monitoring engine's numbers on a terminal, its rebuild, its reference data sets.

The alert commands (``run``, ``alerts``) live in :mod:`inferlog.cli.monitor_alerts` and join this group.

Every command first folds what was logged since the last fold (the rollups live in the log's own
database), so what it prints is current.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from inferlog.cli import monitor_alerts
from inferlog.cli._common import State, console, pass_state
from inferlog.errors import BadParameter
from inferlog.monitor.policy import MonitoringPolicy
from inferlog.monitor.source import Scope
from inferlog.query.filters import parse_since

if TYPE_CHECKING:
    from inferlog.monitor.engine import Monitor


def make_monitor(state: State, policy: MonitoringPolicy | None = None) -> Monitor:
    """The engine over ``--db``, with the policy file's privacy part and key store (if it names one).

    Imported here, not at the top: the engine's sketches bring numpy, which other commands need not load.
    """
    from inferlog.monitor.engine import Monitor

    protection = state.protection()
    base = Path(state.config).parent if state.config else None
    if policy is None:
        policy = protection.policy.monitoring
    return Monitor(
        state.store(), policy, privacy=protection.policy, keyring=protection.keyring, base_dir=base
    )


def _scope_options(command: Any) -> Any:
    for option in reversed(
        (
            click.option("--system", required=True, help="The AI system."),
            click.option("--model", default=None, help="Only this model."),
            click.option(
                "--version", "version_", default=None, help="Only this model version (with --model)."
            ),
            click.option(
                "--since", default="1d", show_default=True, help="ISO-8601 time or a duration ago (30m, 7d)."
            ),
            click.option("--until", default=None, help="ISO-8601 time or a duration ago; default now."),
            click.option("--json", "as_json", is_flag=True, help="Print one JSON document."),
        )
    ):
        command = option(command)
    return command


def _window(since: str, until: str | None) -> tuple[dt.datetime, dt.datetime]:
    end = parse_since(until, name="until") if until else dt.datetime.now(dt.UTC)
    start = parse_since(since)
    if start >= end:
        raise BadParameter("must be before --until", field="since")
    return start, end


def _scope(system: str, model: str | None, version: str | None) -> Scope:
    if version is not None and model is None:
        raise BadParameter("a version needs its --model", field="version")
    return Scope(system, model, version)


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


@click.group("monitor")
def monitor() -> None:
    """Volume, errors, latency, drift and ground truth per system, model and version."""


@monitor.command("show")
@click.option("--system", default=None, help="The AI system; without it, every system, model and version.")
@click.option("--model", default=None, help="Only this model.")
@click.option("--version", "version_", default=None, help="Only this model version (with --model).")
@click.option("--since", default="1d", show_default=True, help="ISO-8601 time or a duration ago (30m, 7d).")
@click.option("--until", default=None, help="ISO-8601 time or a duration ago; default now.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_state
def show_command(
    state: State, /, system: str | None, model: str | None, version_: str | None, since: str, until: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """A table of the metrics of one scope over a window, or of every scope over all time."""
    engine = make_monitor(state)
    engine.catch_up()
    if system is None:
        scopes = [s.to_dict() for s in engine.scopes()]
        if as_json:
            click.echo(json.dumps({"scopes": scopes}, indent=2))
            return
        table = Table(title="monitored scopes (all time)", title_justify="left")
        for column in ("system", "model", "version", "volume", "error rate", "p50 ms", "p95 ms", "last day"):
            table.add_column(
                column, justify="right" if column[0] in "vep" and column != "version" else "left"
            )
        for s in scopes:
            table.add_row(s["system"], s["model"], s["version"], str(s["volume"]), _number(s["error_rate"]),
                          _number(s["latency_p50"]), _number(s["latency_p95"]), s["last_day"][:10])  # fmt: skip
        console().print(table)
        return
    scope = _scope(system, model, version_)
    start, end = _window(since, until)
    values = engine.values(scope, start, end)
    if as_json:
        click.echo(
            json.dumps({"since": start.isoformat(), "until": end.isoformat(), "metrics": values}, indent=2)
        )
        return
    table = Table(
        title=f"{system} {model or ''} {version_ or ''}".strip(), title_justify="left",
        caption=f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC", caption_justify="left",
    )  # fmt: skip
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in values.items():
        table.add_row(name, _number(value, 6))
    console().print(table)


@monitor.command("drift")
@_scope_options
@click.option("--reference", required=True, help="A kept data set, a policy reference, or <since>/<until>.")
@pass_state
def drift_command(
    state: State, /, system: str, model: str | None, version_: str | None, since: str, until: str | None,
    as_json: bool, reference: str,
) -> None:  # fmt: skip
    """Per-feature drift of a window against a reference (PSI >= 0.2 is flagged)."""
    engine = make_monitor(state)
    engine.catch_up()
    start, end = _window(since, until)
    report = engine.drift(_scope(system, model, version_), reference, start, end)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    table = Table(
        title=f"drift of {system} against {reference} ({report.volume} records)", title_justify="left"
    )
    for column in (
        "feature",
        "type",
        "PSI",
        "JS distance",
        "Wasserstein",
        "missing",
        "type changes",
        "verdict",
    ):
        table.add_column(column, justify="left" if column in ("feature", "type", "verdict") else "right")
    for f in report.features:
        verdict = {"major": "[red]major[/red]", "moderate": "[yellow]moderate[/yellow]"}.get(f.severity, "-")
        table.add_row(f.feature, f.type, _number(f.psi), _number(f.jsd), _number(f.wasserstein),
                      _number(f.missing_rate), _number(f.type_change_rate), verdict)  # fmt: skip
    console().print(table)
    if report.output_psi is not None:
        console().print(f"output distribution PSI: {report.output_psi:.4g}")


@monitor.command("rebuild")
@pass_state
def rebuild_command(state: State, /) -> None:
    """Forget the rollups and fold the whole log again (after changing what is monitored)."""
    folded = make_monitor(state).rebuild()
    click.echo(f"rebuilt the monitor's rollups from {folded} entries")


@monitor.group("reference")
def reference_group() -> None:
    """Reference data sets that drift is measured against."""


@reference_group.command("add")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--system", default=None, help="The system the data set describes (its feature settings apply)."
)
@pass_state
def reference_add_command(state: State, /, name: str, file: Path, system: str | None) -> None:
    """Profile a Parquet or CSV FILE (a column per feature) and keep it as NAME."""
    kept = make_monitor(state).add_reference(name, file, system=system)
    click.echo(f"kept reference {kept.name}: {kept.rows} rows from {kept.source}")


@reference_group.command("list")
@pass_state
def reference_list_command(state: State, /) -> None:
    """The kept reference data sets."""
    for kept in make_monitor(state).references.list():
        click.echo(
            f"{kept.name}\t{kept.system or '*'}\t{kept.rows} rows\t{kept.created:%Y-%m-%d %H:%M}\t{kept.source}"
        )


@reference_group.command("remove")
@click.argument("name")
@pass_state
def reference_remove_command(state: State, /, name: str) -> None:
    """Forget the kept reference NAME."""
    if not make_monitor(state).references.remove(name):
        raise BadParameter(f"no kept reference {name!r}", field="name")
    click.echo(f"removed reference {name}")


for _command in monitor_alerts.COMMANDS:
    monitor.add_command(_command)

COMMANDS = [monitor]
