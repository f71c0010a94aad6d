"""``inferlog monitor run`` and ``inferlog monitor alerts``: evaluate the alert rules, list what fired.

``run`` evaluates the ``[monitoring]`` alert rules of the policy file once (``--once``) or every
``--every`` until stopped; each firing or resolving is an ``alert.*`` admin entry in the log and a
post to the rule's webhooks. ``alerts`` lists what the log says: firing rules and recent transitions.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
from typing import Any

import click

from inferlog.cli._common import State, cli_actor, console, inert, pass_state, short_time
from inferlog.errors import UsageError
from inferlog.monitor.alerts import Alerter, AlertStatus, read_state, recent_transitions
from inferlog.monitor.rules import WINDOW_HINT, format_window, parse_window
from inferlog.monitor.scheduler import default_source, load_source_factory, make_alerter
from inferlog.monitor.webhooks import WebhookNotifier


def _every(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.timedelta | None:
    if value is None:
        return None
    try:
        return parse_window(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}") from None


def _alerter(state: State, policy_file: str | None, source: str | None, webhooks: bool) -> Alerter:
    if policy_file is not None:
        state.config = policy_file
    if not state.config:
        raise UsageError("no policy file: pass --policy FILE (or --config / INFERLOG_CONFIG)")
    protection = state.protection()
    policy = protection.policy
    if not policy.monitoring.alerts:
        raise UsageError(f"{state.config}: no alert rules ([[monitoring.alerts]]) to evaluate")
    store = state.store()
    factory = load_source_factory(source) if source is not None else default_source
    metric_source = factory(store, policy, protection.keyring)
    if metric_source is None:
        raise UsageError(
            "no monitoring engine is available to measure the rules' metrics (or pass --source module:callable)"
        )
    return make_alerter(store, policy.monitoring, metric_source, actor=cli_actor(), webhooks=webhooks)


def _report(alerter: Alerter, made: list[Any], as_json: bool) -> None:
    if as_json:
        for name, reading in alerter.readings.items():
            line = {
                "rule": name, "value": reading.value, "volume": reading.volume, "error": reading.error,
                "firing": alerter.state.firing(name), "at": short_time(reading.at),
            }  # fmt: skip
            click.echo(json.dumps(line))
        return
    for transition in made:
        click.echo(
            f"{transition.action}: {transition.rule.name} ({transition.rule.metric} = {transition.reading.value})"
        )
    firing = [r.name for r in alerter.rules if alerter.state.firing(r.name)]
    click.echo(
        f"{len(alerter.rules)} rule(s) evaluated, {len(made)} transition(s) recorded; "
        f"firing: {', '.join(firing) if firing else 'none'}",
        err=True,
    )


@click.command("run")
@click.option("--once", is_flag=True, help="Evaluate once and exit (the default without --every).")
@click.option(
    "--every",
    callback=_every,
    metavar="WINDOW",
    help=f"Evaluate on this cadence until stopped ({WINDOW_HINT}).",
)
@click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
    help="The policy file with the [monitoring] alert rules (default: --config / INFERLOG_CONFIG).",
)  # fmt: skip
@click.option(
    "--source", metavar="MODULE:CALLABLE",
    help="A MetricSource factory of your own, called with (store, policy, key store); default: the engine.",
)  # fmt: skip
@click.option("--no-webhooks", is_flag=True, help="Record transitions in the log but post nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per rule and pass instead of text.")
@pass_state
def run_command(
    state: State,
    /,
    once: bool,
    every: dt.timedelta | None,
    policy_file: str | None,
    source: str | None,
    no_webhooks: bool,
    as_json: bool,
) -> None:
    """Evaluate the policy's alert rules: each firing or resolving becomes an admin entry in the log."""
    if once and every is not None:
        raise UsageError("give --once or --every, not both")
    alerter = _alerter(state, policy_file, source, webhooks=not no_webhooks)
    notifier = alerter.notifier
    try:
        if every is None:
            _report(alerter, alerter.run_once(), as_json)
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(
            f"evaluating {len(alerter.rules)} rule(s) every {format_window(every)}; Ctrl-C stops", err=True
        )
        try:
            while not stop.is_set():
                _report(alerter, alerter.run_once(), as_json)
                stop.wait(every.total_seconds())
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if isinstance(notifier, WebhookNotifier):
            notifier.close(timeout=30)
            if notifier.failed:
                click.echo(
                    f"warning: {notifier.failed} webhook post(s) failed (see the log lines above)", err=True
                )


def _row(status: AlertStatus) -> list[str]:
    d = status.details
    return [
        short_time(status.at),
        "fired" if status.firing else "resolved",
        inert(status.rule),
        inert(str(d.get("metric", ""))),
        str(d.get("value", "")),
        f"{d.get('condition', '')} {d.get('threshold', '')}",
        str(d.get("window", "")),
        inert(status.system),
    ]


@click.command("alerts")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Recent transitions shown."
)
@click.option("--system", help="Only alerts of this system.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: firing and recent.")
@pass_state
def alerts_command(state: State, /, limit: int, system: str | None, as_json: bool) -> None:
    """List the alerts firing now and the recent transitions, as the log records them."""
    store = state.store()
    systems = [system] if system is not None else None
    firing = [s for s in read_state(store).firing_alerts() if systems is None or s.system in systems]
    recent = recent_transitions(store, limit, systems)
    if as_json:
        click.echo(json.dumps({
            "firing": [s.to_dict() for s in firing],
            "recent": [{"action": "alert.fired" if s.firing else "alert.resolved", **s.to_dict()} for s in recent],
        }))  # fmt: skip
        return
    from rich.table import Table

    out = console()
    out.print(f"[bold]firing[/bold]: {len(firing)}" if firing else "firing: none")
    headers = ("time", "change", "rule", "metric", "value", "threshold", "window", "system")
    for title, rows in (("firing since", firing), ("recent transitions", recent)):
        if not rows:
            continue
        table = Table(title=title, title_justify="left", box=None, header_style="bold")
        for name in headers:
            table.add_column(name, no_wrap=True)
        for status in rows:
            table.add_row(*_row(status))
        out.print(table)


COMMANDS = [run_command, alerts_command]
