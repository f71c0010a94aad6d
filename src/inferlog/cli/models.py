"""``inferlog models``: the model registry kept in the log (``register``, ``list``), through :mod:`inferlog.lineage`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from inferlog.cli._common import State, cli_actor, console, inert, pass_state
from inferlog.lineage import card_of, register_model, registered_models


@click.group("models")
def models_group() -> None:
    """Register model versions (digest, lineage URI, card) so records carry them."""


@models_group.command("register")
@click.argument("name")
@click.argument("version")
@click.option("--digest", required=True, help="The artifact's digest, sha256:<64 hex digits>.")
@click.option("--uri", default=None, help="Where the model comes from: a registry or training-run URI.")
@click.option(
    "--card",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A model card file: its SHA-256, size and name are kept (its text too when at most 16 KiB).",
)
@pass_state
def register_command(
    state: State, /, name: str, version: str, digest: str, uri: str | None, card: Path | None
) -> None:
    """Register NAME VERSION: records of it made without a digest or URI get them from here.

    A version names one artifact: registering it again with another digest is refused.
    """
    card_info = card_of(card.read_bytes(), card.name) if card is not None else None
    registration = register_model(
        state.store(must_exist=False),
        name,
        version,
        digest=digest,
        uri=uri,
        card=card_info,
        actor=cli_actor(),
    )
    console().print(f"registered {inert(name)} {inert(version)} {registration.digest}")


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@pass_state
def list_command(state: State, /, as_json: bool) -> None:
    """List registered model versions (the latest registration of each)."""
    registrations = registered_models(state.store())
    if as_json:
        for registration in registrations:
            click.echo(json.dumps(registration.public_view()))
        return
    table = Table("model", "version", "digest", "uri", "card", "registered")
    for r in registrations:
        table.add_row(
            inert(r.name),
            inert(r.version),
            r.digest,
            inert(r.uri or ""),
            inert(str(r.card.get("ref", ""))) if r.card else "",
            f"{r.ts:%Y-%m-%d %H:%M}" if r.ts else "",
        )
    console().print(table)


COMMANDS = [models_group]
