"""Tamper evidence on the command line: ``checkpoint`` and ``verify`` (the signing key is ``keys init-signer``).

``inferlog verify`` exits 0 only when everything holds; otherwise it prints what is wrong, naming the
first bad seq, and exits 1.
"""

from __future__ import annotations

import base64
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from inferlog.cli._common import State, console, pass_state, require_folder, signer_key_file_option
from inferlog.config import ENV_CHECKPOINT_DIR, ENV_VERIFIER_KEY
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.publish import DirectoryPublisher
from inferlog.integrity.signing_keys import load_verifiers
from inferlog.integrity.verify import Problem, audit, default_workers, verify_checkpoint, verify_record

_KEY_OPTION = click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY|FILE",
    help=f"Verifier key string or .pub file (or {ENV_VERIFIER_KEY}; default: the signer key's .pub).",
)
_ORIGIN_OPTION = click.option(
    "--origin",
    metavar="ORIGIN",
    help="The log every checkpoint must name (default: the first verifier key's name).",
)


@click.command("checkpoint")
@signer_key_file_option("The signing key (default ./inferlog-signer.key).")
@click.option(
    "--to",
    "directory",
    type=click.Path(file_okay=False),
    envvar=ENV_CHECKPOINT_DIR,
    help=f"Also write the checkpoint into this folder (or {ENV_CHECKPOINT_DIR}).",
)
@pass_state
def checkpoint_command(state: State, /, key_file: Path | None, directory: str | None) -> None:
    """Sign a checkpoint of the log as it is now, keep it, and publish it off-box."""
    checkpointer = Checkpointer.from_settings(state.store(), key_file, directory=directory)
    kept = checkpointer.checkpoint()
    click.echo(kept.note.decode(), nl=False)


@click.group("verify", invoke_without_command=True)
@_KEY_OPTION
@_ORIGIN_OPTION
@click.option(
    "--skip-signatures",
    is_flag=True,
    help="Without a verifier key, accept a check whose checkpoint signatures were NOT verified.",
)
@click.option(
    "--checkpoints",
    "offbox",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar=ENV_CHECKPOINT_DIR,
    help="A folder of off-box checkpoints to hold the log to (or INFERLOG_CHECKPOINT_DIR).",
)
@click.pass_context
def verify_group(
    ctx: click.Context, keys: tuple[str, ...], origin: str | None, skip_signatures: bool, offbox: Path | None
) -> None:
    """Full audit: recompute every leaf and the root at each signed checkpoint.

    Also checks seq continuity, every payload's commitment, every stored column against the leaf or
    the committed body, and that the log is not shorter than any checkpoint. Exit code 0 only when
    all of it holds. Checkpoint signatures need a verifier key: without one, checkpoints that exist
    make the exit code 1 unless --skip-signatures says an unsigned check is what you want. With a key,
    a log that no signed checkpoint covers (none in the store, none off-box) is NOT VERIFIED, exit 1.
    """
    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.find_object(State)  # type: ignore[assignment]
    store = state.store()
    verifiers = load_verifiers(list(keys))
    notes = DirectoryPublisher(offbox).notes() if offbox else []
    total = store.size()
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("verify", total=total)
        report = audit(
            store,
            verifiers,
            notes,
            progress=lambda n: progress.advance(task, n),
            workers=default_workers(store),
            origin=origin,
        )
    out = console()
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}")
    if not report.ok:
        _fail(report.problems, f"first bad seq: {report.first_bad_seq}" if report.first_bad_seq else None)
    root = f"root at {report.size}: {base64.b64encode(report.root).decode()}"
    if verifiers and (report.checkpoints or not report.entries):
        out.print(
            f"[green]OK[/green] {report.entries} entries ({report.purged} purged), "
            f"{report.checkpoints} signed checkpoint(s) verified: signature, origin and root; {root}"
        )
        return
    if verifiers and not skip_signatures:
        # Whoever rewrites the log can also delete the store's checkpoints: with nothing signed to hold
        # it to, a key proves nothing, and an OK here would say otherwise.
        console(stderr=True).print(
            f"[red]NOT VERIFIED[/red] {report.entries} entries, no signed checkpoint to hold them to "
            "(none in the store, and no --checkpoints folder of off-box copies): run `inferlog checkpoint`, "
            "pass the off-box folder, or --skip-signatures to accept an unsigned check"
        )
        raise SystemExit(1)
    unsigned = f"{report.checkpoints} checkpoint root(s) recomputed, signatures NOT checked"
    if skip_signatures or not (notes or store.checkpoints()):
        out.print(
            f"[yellow]UNSIGNED[/yellow] {report.entries} entries ({report.purged} purged), {unsigned}; {root}"
        )
        return
    console(stderr=True).print(
        f"[red]NOT VERIFIED[/red] {report.entries} entries ({report.purged} purged), {unsigned}: "
        f"pass --key FILE (or set {ENV_VERIFIER_KEY}), or --skip-signatures to accept an unsigned check"
    )
    raise SystemExit(1)


@verify_group.command("record")
@click.argument("entry_id", metavar="ID")
@_KEY_OPTION
@_ORIGIN_OPTION
@pass_state
def verify_record_command(state: State, /, entry_id: str, keys: tuple[str, ...], origin: str | None) -> None:
    """Prove one entry is in the log under a signed checkpoint (inclusion proof)."""
    verifiers = load_verifiers(list(keys) or _parent_keys())
    report = verify_record(state.store(), entry_id, verifiers, origin or _parent_origin())
    if not report.ok:
        _fail(report.problems, None)
    console().print(
        f"[green]OK[/green] entry {entry_id} is leaf {report.seq - 1} (seq {report.seq}) of signed checkpoint "
        f"{report.checkpoint_size}; inclusion proof of {len(report.proof)} hashes verified"
    )


@verify_group.command("checkpoint")
@click.option(
    "--trusted",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File holding the last checkpoint you verified (created on first use).",
)
@_KEY_OPTION
@_ORIGIN_OPTION
@pass_state
def verify_checkpoint_command(
    state: State, /, trusted: Path, keys: tuple[str, ...], origin: str | None
) -> None:
    """Check the newest checkpoint extends the trusted one (consistency proof); then trust it."""
    require_folder(trusted, "--trusted")
    verifiers = load_verifiers(list(keys) or _parent_keys())
    report = verify_checkpoint(state.store(), verifiers, trusted, origin or _parent_origin())
    if not report.ok:
        for note in report.evidence:
            click.echo(note.decode(), err=True)
        _fail(
            report.problems,
            "both notes above are signed evidence of the inconsistency" if report.evidence else None,
        )
    latest = report.latest
    if latest is None:  # cannot happen when ok; keeps the type checker honest without assert
        raise SystemExit(1)
    if report.first_use:
        console().print(
            f"[yellow]trusting on first use[/yellow]: checkpoint {latest.size} saved to {trusted}"
        )
    else:
        previous = report.trusted.size if report.trusted is not None else 0
        console().print(
            f"[green]OK[/green] checkpoint {latest.size} is consistent with trusted {previous}; {trusted} updated"
        )


def _parent_keys() -> list[str]:
    ctx = click.get_current_context()
    parent = ctx.parent.params.get("keys") if ctx.parent is not None else None
    return list(parent or [])


def _parent_origin() -> str | None:
    ctx = click.get_current_context()
    parent = ctx.parent.params.get("origin") if ctx.parent is not None else None
    return str(parent) if parent else None


def _fail(problems: list[Problem], footer: str | None) -> None:
    out = console(stderr=True)
    for problem in problems[:50]:
        out.print(f"[red]FAIL[/red] {problem}")
    if len(problems) > 50:
        out.print(f"... and {len(problems) - 50} more problems")
    if footer:
        out.print(footer)
    raise SystemExit(1)


COMMANDS = [checkpoint_command, verify_group]
