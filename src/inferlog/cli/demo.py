"""``inferlog demo``: fill a log with a realistic stream from a real scikit-learn model."""

from __future__ import annotations

from pathlib import Path

import click

from inferlog.cli._common import State, pass_state
from inferlog.cli._serving import run_app


@click.command("demo")
@click.option("--db", "db_url", metavar="URL", help="The log to fill (default: the group's --db).")
@click.option("-n", "count", type=click.IntRange(min=1), default=500, show_default=True,
              help="How many predictions to make.")  # fmt: skip
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed for the traffic.")
@click.option(
    "--serve",
    "serve_port",
    type=click.IntRange(1, 65535),
    default=None,
    metavar="PORT",
    help="Then serve the console on 127.0.0.1:PORT over the demo's log (without keys, loopback only), "
    "with the demo's monitoring policy (inferlog-demo.toml) and its drift alert.",
)
@pass_state
def demo_command(state: State, /, db_url: str | None, count: int, seed: int, serve_port: int | None) -> None:
    """Fill a log with a demo stream from a real scikit-learn model.

    Trains two versions of a classifier on the breast-cancer data that ships with scikit-learn and
    logs N predictions over the last seven days, some failures, ground-truth labels, two human
    overrides, and a drift in the canary's last day.
    """
    from inferlog.demo import demo_policy, run_demo

    url = db_url or state.db
    click.echo(f"training two model versions and logging {count} predictions to {url} ...", err=True)
    summary = run_demo(url, n=count, seed=seed)
    click.echo(summary.next_steps())
    if serve_port is None:
        return
    from inferlog.keystore.protection import load_protection
    from inferlog.monitor.engine import Monitor
    from inferlog.monitor.scheduler import make_alerter
    from inferlog.server import create_app
    from inferlog.server.routes.monitor import install_monitor
    from inferlog.store import open_store

    policy = Path("inferlog-demo.toml")
    policy.write_text(demo_policy(summary))
    protection = load_protection(str(policy))
    store = open_store(url)
    rules = protection.policy.monitoring
    monitor = Monitor(store, rules, privacy=protection.policy, keyring=protection.keyring)
    monitor.catch_up()  # the rollups of the whole demo stream, before the first page asks
    fired = make_alerter(store, rules, monitor, actor="inferlog demo", webhooks=False).run_once()
    app = create_app(store, auth=False, protection=protection, retention_every=0, metric_source=monitor)
    install_monitor(app, monitor)
    address = f"http://127.0.0.1:{serve_port}/"
    click.echo(
        "\n".join(
            [
                "",
                f"The console is at {address}  (Ctrl-C stops it)",
                "  its models, their charts, and the drift alert the demo planted in the canary's last day"
                f" ({', '.join(t.rule.name for t in fired if t.firing) or 'no alert fired'});",
                f"  the monitoring rules are in {policy}; the API's docs are at {address}docs",
            ]
        )
    )
    try:
        run_app(app, "127.0.0.1", serve_port, log_level="warning")
    finally:
        store.close()


COMMANDS = [demo_command]
