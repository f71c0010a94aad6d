"""``inferlog monitor``: the monitoring engine's numbers and the alert rules over them.

The alert commands (``run``, ``alerts``) live in :mod:`inferlog.cli.monitor_alerts`.
"""

from __future__ import annotations

import click

from inferlog.cli import monitor_alerts


@click.group("monitor")
def monitor_group() -> None:
    """Monitoring: evaluate the policy's alert rules and list what fired."""


for _command in monitor_alerts.COMMANDS:
    monitor_group.add_command(_command)

COMMANDS = [monitor_group]
