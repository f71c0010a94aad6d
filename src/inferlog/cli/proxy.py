"""``inferlog proxy``: a reverse proxy in front of an OIP model server that logs every infer call."""

from __future__ import annotations

import click

from inferlog.cli._common import State, pass_state
from inferlog.cli._serving import listen_options, run_app
from inferlog.config import ENV_API_KEY


@click.command("proxy")
@click.option(
    "--upstream", required=True, metavar="URL", help="The OIP model server, e.g. http://127.0.0.1:8080."
)
@listen_options(port=8081)
@click.option(
    "--db", "db_url", metavar="URL", help="The log to write (default: the group's --db / $INFERLOG_DB)."
)
@click.option(
    "--log",
    "log_url",
    metavar="URL",
    help="An inferlog server to log to (http://inferlog:8000) instead of the --db of the group.",
)
@click.option("--api-key", envvar=ENV_API_KEY, help="The ingest key for --log.")
@click.option("--system", help="The AI system the records belong to (default: $INFERLOG_SYSTEM).")
@click.option(
    "--fail-closed", is_flag=True, help="Answer 503 instead of the model's result when it cannot be logged."
)
@click.option(
    "--identity-header", metavar="NAME", help="Request header naming the caller (kept as the actor)."
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Upstream timeout, seconds.",
)
@click.option(
    "--access-log", is_flag=True, help="Also print a line per request (each infer call is a record anyway)."
)
@pass_state
def proxy_command(
    state: State,
    /,
    upstream: str,
    host: str,
    port: int,
    db_url: str | None,
    log_url: str | None,
    api_key: str | None,
    system: str | None,
    fail_closed: bool,
    identity_header: str | None,
    timeout: float,
    access_log: bool,
) -> None:
    """Forward every request to an OIP server unchanged; record each POST /v2/models/{name}/infer."""
    import inferlog
    from inferlog.proxy import create_proxy

    log = inferlog.open(
        log_url or db_url or state.db,
        system=system,
        api_key=api_key,
        fail_closed=fail_closed,
        config=state.config,
    )
    try:
        app = create_proxy(upstream, log, identity_header=identity_header, timeout=timeout, close_log=True)
        # The upstream's Date and Server headers are passed on: uvicorn must not add its own.
        run_app(
            app,
            host,
            port,
            log_level="info",
            access_log=access_log,
            server_header=False,
            date_header=False,
        )
    finally:
        log.close()


COMMANDS = [proxy_command]
