"""``inferlog keys``: API keys (``create``, ``list``, ``revoke``) and the checkpoint signing key (``init-signer``).

API keys are :mod:`inferlog.apikeys` (every change on record, as over HTTP); the signing key is
:mod:`inferlog.integrity.signing_keys`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from inferlog.apikeys import issue_key, list_keys, revoke_key
from inferlog.cli._common import State, cli_actor, console, inert, pass_state, signer_key_file_option
from inferlog.integrity.signing_keys import DEFAULT_ORIGIN, init_signer, public_key_path, signer_key_path
from inferlog.store.base import ROLES


@click.group("keys")
def keys_group() -> None:
    """Manage API keys and the checkpoint signing key."""


@keys_group.command("init-signer")
@signer_key_file_option(
    "Where to write the private key (default ./inferlog-signer.key); the .pub goes beside it."
)
@click.option(
    "--origin", default=DEFAULT_ORIGIN, show_default=True, help="The log's name in every checkpoint."
)
def init_signer_command(key_file: Path | None, origin: str) -> None:
    """Make the Ed25519 key that signs checkpoints. Keep it off the database host."""
    path = signer_key_path(key_file)
    signer = init_signer(path, origin)
    out = console()
    out.print(f"[green]Signing key written to[/green] {path} (mode 600)")
    out.print(f"Verifier key ({public_key_path(path)}), give it to your auditors:")
    click.echo(signer.verifier_key_string())


@keys_group.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the key may do.")
@click.option(
    "--system",
    "systems",
    multiple=True,
    required=True,
    help="A system the key may touch (repeatable; '*' = all).",
)
@click.option("--name", required=True, help="Who or what uses the key.")
@pass_state
def create_key_command(state: State, /, role: str, systems: tuple[str, ...], name: str) -> None:
    """Create an API key. It is shown once; only its hash is kept."""
    token, stored = issue_key(state.store(must_exist=False), role, list(systems), name, actor=cli_actor())
    console(stderr=True).print(
        f"[green]created[/green] {stored.role} key {stored.kid} for {', '.join(stored.systems)}. "
        "Store it now: it cannot be shown again."
    )
    click.echo(token)


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@pass_state
def list_keys_command(state: State, /, as_json: bool) -> None:
    """List API keys (never their secrets)."""
    keys = list_keys(state.store())
    if as_json:
        for key in keys:
            click.echo(json.dumps(key.public_view()))
        return
    table = Table("kid", "role", "systems", "name", "created", "revoked")
    for key in keys:
        table.add_row(
            key.kid,
            key.role,
            inert(", ".join(key.systems)),
            inert(key.name),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console().print(table)


@keys_group.command("revoke")
@click.argument("kid")
@pass_state
def revoke_key_command(state: State, /, kid: str) -> None:
    """Revoke an API key at once."""
    revoke_key(state.store(), kid, actor=cli_actor())
    console().print(f"revoked {kid}")


COMMANDS = [keys_group]
