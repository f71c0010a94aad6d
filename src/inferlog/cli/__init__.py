"""The ``inferlog`` command: a click group, one module per command group, thin over the library.

Every error inferlog raises on purpose (and any ``OSError``) ends the command with one red line on
stderr and exit code 1; nobody has to read a traceback to learn that an id is unknown.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import click

from inferlog import __version__
from inferlog.cli._common import State, accept_db
from inferlog.config import DEFAULT_DB, ENV_CONFIG, ENV_DB
from inferlog.errors import BadParameter, InferlogError
from inferlog.privacy.policy import load_policy

__all__ = ["CliError", "cli", "main"]


class CliError(click.ClickException):
    """An error shown as one red ``Error: ...`` line on stderr; exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(click.style(f"Error: {self.format_message()}", fg="red"), err=True, file=file)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (an OSError's with its file name)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    elif isinstance(exc, BadParameter):  # named as the user typed it: --since, --cursor
        text = f"--{exc.field.replace('_', '-')}: {exc.reason}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


class InferlogGroup(click.Group):
    """A group whose commands' inferlog errors and OSErrors become one-line :class:`CliError` s."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # click quiets a closed pipe (`inferlog query --json | head`) itself
        except (InferlogError, OSError) as exc:
            raise CliError(one_line(exc)) from None


@click.group(cls=InferlogGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar=ENV_DB,
    default=DEFAULT_DB,
    show_default=True,
    metavar="URL",
    help=f"The log to use (or set {ENV_DB}), e.g. sqlite:///inferlog.db.",
)
@click.option(
    "--config",
    envvar=ENV_CONFIG,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help=f"The policy file (or set {ENV_CONFIG}): encryption, redaction, retention, legal holds.",
)
@click.version_option(__version__, prog_name="inferlog")
@click.pass_context
def cli(ctx: click.Context, db: str, config: str | None) -> None:
    """inferlog: the tamper-evident record of every inference an AI system makes."""
    if config is not None and not Path(config).is_file():  # every command, not only those that read it
        raise CliError(f"no policy file {config} (check --config or {ENV_CONFIG})")
    if config is not None and ctx.invoked_subcommand != "policy":  # `policy check` reports it itself
        try:  # a policy file that does not parse fails every command alike, not only those that read it
            load_policy(config)
        except InferlogError as exc:
            raise CliError(one_line(exc)) from None
    ctx.obj = State(ctx, db, config)


# Commands that open no log, or name their own (`demo --db`, `proxy --db`): no group --db override.
_OWN_DB = frozenset({"demo", "proxy", "keys init-signer", "policy show", "policy check", "verify pack"})


def _accept_db_everywhere(command: click.Command, path: str = "") -> None:
    """Give every command that opens a log its own ``--db`` (see ``accept_db``)."""
    name = f"{path} {command.name}".strip()
    if isinstance(command, click.Group):
        if command.invoke_without_command:
            accept_db(command)
        for sub in command.commands.values():
            _accept_db_everywhere(sub, name)
    elif name not in _OWN_DB:
        accept_db(command)


def _register() -> None:
    from inferlog.cli import (
        demo,
        evidence,
        export,
        governance,
        importing,
        integrity,
        keys,
        models,
        monitor,
        oversight,
        proxy,
        query,
        serve,
        stats,
        worker,
    )

    integrity.verify_group.add_command(evidence.verify_pack_command)
    for module in (
        query,
        stats,
        oversight,
        export,
        evidence,
        importing,
        integrity,
        keys,
        models,
        monitor,
        governance,
        serve,
        proxy,
        worker,
        demo,
    ):
        for command in module.COMMANDS:
            _accept_db_everywhere(command)
            cli.add_command(command)


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``inferlog`` command (the console script)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="inferlog")
    except (InferlogError, OSError) as exc:  # raised outside a command, e.g. while closing the store
        CliError(one_line(exc)).show()
        sys.exit(1)
