"""``inferlog demo``: fill a log with a realistic stream from a real scikit-learn model."""

from __future__ import annotations

import click

from inferlog.cli._common import State, pass_state


@click.command("demo")
@click.option("--db", "db_url", metavar="URL", help="The log to fill (default: the group's --db).")
@click.option("-n", "count", type=click.IntRange(min=1), default=500, show_default=True,
              help="How many predictions to make.")  # fmt: skip
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed for the traffic.")
@pass_state
def demo_command(state: State, /, db_url: str | None, count: int, seed: int) -> None:
    """Fill a log with a demo stream from a real scikit-learn model.

    Trains two versions of a classifier on the breast-cancer data that ships with scikit-learn and
    logs N predictions, some failures, ground-truth labels and two human overrides.
    """
    from inferlog.demo import run_demo

    url = db_url or state.db
    click.echo(f"training two model versions and logging {count} predictions to {url} ...", err=True)
    summary = run_demo(url, n=count, seed=seed)
    click.echo(summary.next_steps())


COMMANDS = [demo_command]
