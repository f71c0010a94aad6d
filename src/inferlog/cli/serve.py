"""``inferlog serve``: the HTTP API over the log."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import click

from inferlog.cli._common import State, console, pass_state
from inferlog.cli._serving import listen_options, run_app
from inferlog.config import (
    DEFAULT_KSERVE_TIMEOUT,
    ENV_KSERVE_PENDING,
    ENV_KSERVE_TIMEOUT,
    ENV_SIGNER_KEY_FILE,
    user_data_dir,
)
from inferlog.errors import UsageError
from inferlog.store.protocols import Store


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_kserve_pending(store: Store, db_url: str) -> Path | None:
    """None beside a SQLite file (the sink's own default); else one file per database under the data dir.

    Never a temporary file: the KServe logger does not retry, so a half lost on restart is lost.
    """
    if getattr(store, "path", None) is not None:
        return None
    parts = urlsplit(db_url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}"  # without user and password
    return user_data_dir() / f"kserve-pending-{hashlib.sha256(where.encode()).hexdigest()[:16]}.db"


@click.command("serve")
@listen_options(port=8000)
@click.option("--no-auth", is_flag=True, help="Serve without API keys (only on a loopback address).")
@click.option(
    "--insecure-public-no-auth",
    is_flag=True,
    help="Allow --no-auth on a non-loopback address. Anyone who can reach it can read and write the log.",
)
@click.option(
    "--max-body-mb",
    default=16.0,
    show_default=True,
    type=click.FloatRange(0.001),
    help="Largest request body.",
)
@click.option(
    "--signer-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar=ENV_SIGNER_KEY_FILE,
    help="Sign checkpoints with this key: every INFERLOG_CHECKPOINT_EVERY entries (1000) or "
    "INFERLOG_CHECKPOINT_SECONDS (10) while serving, at shutdown, and on POST /v1/checkpoint.",
)
@click.option(
    "--kserve-pending",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=ENV_KSERVE_PENDING,
    help="File for KServe halves waiting for their partner (default: beside a SQLite log, else under "
    "the user's data dir).",
)
@click.option(
    "--kserve-timeout",
    default=DEFAULT_KSERVE_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0.001),
    envvar=ENV_KSERVE_TIMEOUT,
    help="Seconds a lone KServe half waits for its partner before it is recorded alone.",
)
@click.option(
    "--retention-every",
    default=24.0,
    show_default=True,
    type=click.FloatRange(0),
    metavar="HOURS",
    help="Apply the policy's retention at start and then every HOURS (0: never; needs --config).",
)
@pass_state
def serve_command(
    state: State,
    /,
    host: str,
    port: int,
    no_auth: bool,
    insecure_public_no_auth: bool,
    max_body_mb: float,
    signer_key: Path | None,
    kserve_pending: Path | None,
    kserve_timeout: float,
    retention_every: float,
) -> None:
    """Run the HTTP API (OpenAPI at /docs) over the log."""
    if no_auth and not _is_loopback(host) and not insecure_public_no_auth:
        raise UsageError(
            f"refusing to serve {host} without auth: anyone on the network could read the log. "
            "Create keys with `inferlog keys create`, or add --insecure-public-no-auth if you really mean it"
        )
    from inferlog.integrity.checkpointer import Checkpointer
    from inferlog.server import create_app

    store = state.store(must_exist=False)
    checkpointer = Checkpointer.from_settings(store, signer_key) if signer_key else None
    if not no_auth and not store.api_keys():
        console(stderr=True).print(
            "[yellow]no API keys yet:[/yellow] every request will get 401. Create one with "
            "`inferlog keys create --role admin --system '*' --name ops`"
        )
    protection = state.protection() if state.config else None
    app = create_app(
        store,
        auth=not no_auth,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        checkpointer=checkpointer,
        protection=protection,
        retention_every=retention_every * 3600,
    )
    app.state.kserve_pending_path = kserve_pending or default_kserve_pending(store, state.db)
    app.state.kserve_timeout = kserve_timeout
    console(stderr=True).print(f"inferlog serving {state.db} on http://{host}:{port} (OpenAPI at /docs)")
    run_app(app, host, port, log_level="warning")


COMMANDS = [serve_command]
