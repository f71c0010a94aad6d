"""``inferlog policy``, ``retention``, ``erase`` and ``keystore``: keep and forget, by policy, on record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from inferlog.cli._common import State, cli_actor, console, pass_state
from inferlog.config import ENV_SIGNER_KEY_FILE
from inferlog.errors import UsageError
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.privacy.policy import load_policy
from inferlog.retention import Governance, apply_retention, erase, plan_retention, retire_key, rotate_key


def _governance(state: State) -> Governance:
    protection = state.protection()
    keystore = protection.keyring
    return Governance(
        state.store(),
        protection.policy,
        keystore,  # type: ignore[arg-type]
        actor=cli_actor(),
    )


def _echo_json(data: object) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    out = console()
    if out.is_terminal:
        out.print_json(text)
    else:
        click.echo(text)


# -- policy ---------------------------------------------------------------------------------------


@click.group("policy")
def policy_group() -> None:
    """The policy file in force: what is encrypted, redacted, pseudonymized, kept and held."""


@policy_group.command("show")
@pass_state
def policy_show(state: State, /) -> None:
    """Print the policy in force (normalized, with its digest)."""
    policy = state.protection().policy
    _echo_json({"file": state.config, "digest": policy.digest, **policy.to_dict()})


@policy_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, exists=True))
@pass_state
def policy_check(state: State, /, path: str | None) -> None:
    """Check a policy file (default: the one in force); exit 1 with the reason if it is invalid."""
    target = path or state.config
    if not target:
        raise UsageError("no policy file: give one, or --config / INFERLOG_CONFIG")
    policy = load_policy(target)
    for system, reason in policy.forced():
        click.echo(f"note: {system}: retention below the minimum, forced ({reason})", err=True)
    click.echo(f"{target}: valid (digest {policy.digest[:16]})")


@policy_group.command("apply")
@pass_state
def policy_apply(state: State, /) -> None:
    """Record the policy in force in the log (an admin entry), if it changed since the last one."""
    if not state.config:
        raise UsageError("no policy file: pass --config or set INFERLOG_CONFIG")
    entry_id = _governance(state).record_policy()
    if entry_id is None:
        click.echo("the log already records this policy", err=True)
    else:
        click.echo(f"policy recorded as admin entry {entry_id}")


# -- retention ------------------------------------------------------------------------------------


@click.group("retention")
def retention_group() -> None:
    """Purge payloads past their system's retention period (legal holds keep theirs)."""


@retention_group.command("plan")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_state
def retention_plan(state: State, /, as_json: bool) -> None:
    """Show what `retention apply` would remove now, per system."""
    plan = plan_retention(_governance(state))
    if as_json:
        _echo_json(plan.as_dict())
        return
    for system in plan.systems:
        if system.cutoff is None:
            click.echo(f"{system.system}: kept forever (no retention set)")
            continue
        line = (
            f"{system.system}: retention {system.retention}, before {system.cutoff:%Y-%m-%d %H:%M}Z: "
            f"{system.purge} payloads to purge, {system.held} held, {len(system.epoch_keys)} epoch keys to destroy"
        )
        click.echo(line + (f" (short retention forced: {system.forced})" if system.forced else ""))


@retention_group.command("apply")
@pass_state
def retention_apply(state: State, /) -> None:
    """Purge what the plan says, destroy expired epoch keys, and record it as an admin entry."""
    gov = _governance(state)
    gov.record_policy()
    plan = apply_retention(gov)
    for system in plan.systems:
        if system.cutoff is not None:
            click.echo(
                f"{system.system}: purged {system.purge}, kept {system.held} under legal hold, "
                f"destroyed {len(system.epoch_keys)} epoch keys"
            )


# -- erasure --------------------------------------------------------------------------------------


@click.command("erase")
@click.option("--subject", required=True, help="The data subject, as the records name it.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar=ENV_SIGNER_KEY_FILE,
    help="Signing key: sign a checkpoint after the erasure for the certificate (or INFERLOG_SIGNER_KEY_FILE).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def erase_command(state: State, /, subject: str, key_file: Path | None, yes: bool) -> None:
    """Erase one data subject: purge their payloads, destroy their key; print a certificate (JSON).

    Without a policy file (no key store) the payloads are purged and the erasure is recorded; there
    is no key to destroy.
    """
    if not yes:
        click.confirm(f"Erase every payload of subject {subject!r}? This cannot be undone", abort=True)
    gov = _governance(state)
    gov.record_policy()
    key = key_file or (os.environ.get(ENV_SIGNER_KEY_FILE) or None)
    checkpoint = Checkpointer.from_settings(state.store(), key).checkpoint if key else None
    certificate = erase(gov, subject, checkpoint=checkpoint)
    _echo_json(certificate.as_dict())


# -- key store ------------------------------------------------------------------------------------


@click.group("keystore")
def keystore_group() -> None:
    """The key store that seals payloads: list keys, rotate one, retire old versions."""


@keystore_group.command("list")
@click.option("--prefix", default="", help="Only keys whose name starts with this (epoch:, subject:).")
@pass_state
def keystore_list(state: State, /, prefix: str) -> None:
    """Every key version, live or destroyed (never the key material)."""
    gov = _governance(state)
    if gov.keystore is None:
        raise UsageError("the policy names no key store ([keystore] path)")
    for info in gov.keystore.list_keys(prefix):
        destroyed = f"destroyed {info.destroyed_at:%Y-%m-%d %H:%M}Z" if info.destroyed_at else "live"
        click.echo(f"{info.ref}\t{info.created_at:%Y-%m-%d %H:%M}Z\t{destroyed}")


@keystore_group.command("rotate")
@click.argument("name")
@pass_state
def keystore_rotate(state: State, /, name: str) -> None:
    """Rotate key NAME: a new version, every data key re-wrapped; old versions retired (still readable)."""
    rotation = rotate_key(_governance(state), name)
    click.echo(
        f"{name}: now {rotation.current}; re-wrapped {rotation.rewrapped} data keys "
        f"({rotation.shredded} already shredded); old versions retired: `inferlog keystore retire {name}` "
        "destroys them once nothing sealed under them can still be in flight"
    )


@keystore_group.command("retire")
@click.argument("name")
@pass_state
def keystore_retire(state: State, /, name: str) -> None:
    """Re-wrap what still uses old versions of key NAME, then destroy every version but the current."""
    rotation = retire_key(_governance(state), name)
    click.echo(
        f"{name}: current {rotation.current}; re-wrapped {rotation.rewrapped} data keys, "
        f"destroyed {rotation.destroyed} old versions"
    )


COMMANDS = [policy_group, retention_group, erase_command, keystore_group]
