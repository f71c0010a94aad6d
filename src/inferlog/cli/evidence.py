"""``inferlog evidence`` (build an evidence pack) and ``inferlog verify pack`` (check one, offline)."""

from __future__ import annotations

from pathlib import Path

import click

from inferlog.cli._common import State, pass_state, printable
from inferlog.config import ENV_SIGNER_KEY_FILE, ENV_VERIFIER_KEY
from inferlog.errors import UsageError
from inferlog.evidence import Selection, build_pack, verify_pack
from inferlog.integrity.signing_keys import load_signer, load_verifiers
from inferlog.query import parse_since
from inferlog.store.base import Query


def _purpose(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not 1 <= len(value) <= 256:  # an access entry keeps 1 to 256 characters
        raise click.BadParameter(f"must be 1 to 256 characters, got {len(value)}")
    return value


@click.command("evidence")
@click.option("--system", required=True, help="The AI system the pack is about.")
@click.option(
    "--since", required=True, help="Start of the period: ISO-8601 (UTC if no zone), or 30d, 2w ago."
)
@click.option("--until", required=True, help="End of the period (not included): same forms as --since.")
@click.option("--subject", help="Only this data subject's inferences (pseudonymized as the policy says).")
@click.option("--model", help="Only this model's inferences.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Where to write the pack: a zip if it ends in .zip, else a new folder.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=ENV_SIGNER_KEY_FILE,
    help="The log's checkpoint signing key, which signs the manifest (default ./inferlog-signer.key).",
)
@click.option(
    "--purpose",
    default="evidence pack for an auditor",
    show_default=True,
    callback=_purpose,
    help="Why the entries leave the log; kept, with who and how many, in an access entry.",
)
@pass_state
def evidence_command(
    state: State, /, system: str, since: str, until: str, subject: str | None, model: str | None, out: Path,
    key_file: Path | None, purpose: str,
) -> None:  # fmt: skip
    """Write a signed evidence pack: what a system did over a period, with its proofs.

    The pack holds the period's inferences (JSONL and Parquet) with inclusion proofs against the
    newest signed checkpoint, consistency proofs from earlier checkpoints, the checkpoint notes and
    verifier key, the policy in force and its changes, feedback and overrides, the access trail,
    retention and erasure entries (erased entries as leaves without content), the model lineage, an
    HTML report, a standalone verifier, and a manifest of every file's SHA-256 signed with the key.
    It refuses when no signed checkpoint covers the period yet (run `inferlog checkpoint`).
    """
    signer = load_signer(key_file)
    stored_subject = state.filters({"subject": subject}).get("subject") if subject else None
    selection = Selection(
        system=system, since=parse_since(since, name="since"), until=parse_since(until, name="until"),
        subject=stored_subject, model=model,
    )  # fmt: skip
    built = build_pack(state.store(), selection, signer, out)
    read = Query(
        system=system, since=selection.since, until=selection.until, subject=stored_subject, model=model
    )
    state.audit("evidence", purpose, read, {system: built.entries}, output=str(out))
    kinds = built.summary["entries"]["by_kind"]
    erased = sum(built.summary["entries"]["erased"].values())
    parts = ", ".join(f"{kinds.get(kind, 0)} {kind}" for kind in ("inference", "feedback", "access", "admin"))
    click.echo(
        f"{click.style('pack written', fg='green')} to {out}: {built.entries} entries ({parts}; {erased} erased "
        f"or purged), each proven in signed checkpoint {built.checkpoint.size}; {len(built.earlier)} earlier "
        "checkpoint(s) proven consistent with it"
    )
    if built.later:
        click.echo(
            f"{click.style('note:', fg='yellow')} {built.later} related entries (reads, feedback, admin) logged "
            f"after checkpoint {built.checkpoint.size} are not in it: run `inferlog checkpoint` and build again "
            "to include them"
        )
    click.echo(f"verify it with: inferlog verify pack {out} --key '{signer.verifier_key_string()}'")


@click.command("pack")
@click.argument("pack", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY|FILE",
    help=f"The log's verifier key string or .pub file (or {ENV_VERIFIER_KEY}).",
)
@click.option(
    "--origin", metavar="ORIGIN", help="The log the checkpoints must name (default: the key's name)."
)
def verify_pack_command(pack: Path, keys: tuple[str, ...], origin: str | None) -> None:
    """Check an evidence pack offline: signatures, file hashes, every proof, JSONL against Parquet.

    Needs no database. Exit code 0 only when everything holds; otherwise each problem is printed,
    naming the file, line or entry (seq), and the exit code is 1.
    """
    ctx = click.get_current_context()
    parent = ctx.parent.params if ctx.parent is not None else {}
    verifiers = load_verifiers(list(keys) or list(parent.get("keys") or []))
    if not verifiers:
        raise UsageError(
            f"verifying a pack needs the log's verifier key: pass --key (or set {ENV_VERIFIER_KEY})"
        )
    report = verify_pack(pack, verifiers, origin or parent.get("origin"))
    if not report.ok:
        for problem in report.problems[:50]:
            click.echo(f"{click.style('FAIL', fg='red')} {printable(str(problem))}", err=True)
        if len(report.problems) > 50:
            click.echo(f"... and {len(report.problems) - 50} more problems", err=True)
        click.echo(
            f"{click.style('NOT VERIFIED', fg='red')} {pack}: {len(report.problems)} problem(s)", err=True
        )
        raise SystemExit(1)
    size = report.checkpoint.size if report.checkpoint is not None else 0
    click.echo(
        f"{click.style('OK', fg='green')} {pack}: manifest signed by {verifiers[0].name}, every file's SHA-256 matches; "
        f"{report.entries} entries ({report.erased} erased or purged) included in signed checkpoint {size}; "
        f"{report.consistency} earlier checkpoint(s) consistent with it; entries.parquet matches entries.jsonl"
    )


COMMANDS = [evidence_command]
