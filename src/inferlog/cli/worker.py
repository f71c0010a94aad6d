"""``inferlog worker``: consume a NATS JetStream stream into the log (run as many as the load needs)."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType

import click

from inferlog.cli._common import State, console, pass_state
from inferlog.config import (
    ENV_NATS,
    ENV_SIGNER_KEY_FILE,
    ENV_WORKER_ACK_WAIT,
    ENV_WORKER_BATCH,
    ENV_WORKER_DURABLE,
    ENV_WORKER_MAX_DELIVER,
    ENV_WORKER_METRICS_PORT,
    WorkerSettings,
)
from inferlog.errors import UsageError

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the metrics and health port: a scraper and a probe must reach it


@click.command("worker")
@click.option(
    "--nats",
    "nats_url",
    metavar="URL",
    help=f"The stream to consume (or set {ENV_NATS}), e.g. nats://host:4222?stream=INFERLOG.",
)
@click.option(
    "--durable",
    metavar="NAME",
    help=f"The durable consumer the workers share (or {ENV_WORKER_DURABLE}; default inferlog-workers).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    help=f"Messages per fetch and transaction (or {ENV_WORKER_BATCH}; default 500).",
)
@click.option(
    "--max-deliver",
    type=click.IntRange(1, 1000),
    help=f"Deliveries before a message is dead-lettered (or {ENV_WORKER_MAX_DELIVER}; default 5).",
)
@click.option(
    "--ack-wait",
    type=click.FloatRange(1),
    help=f"Seconds before JetStream redelivers an unacknowledged message (or {ENV_WORKER_ACK_WAIT}; default 30).",
)
@click.option(
    "--metrics-host", default=ALL_INTERFACES, show_default=True, help="Address of /metrics and /healthz."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65_535),
    help=f"Port of /metrics and /healthz (or {ENV_WORKER_METRICS_PORT}; default 9464; 0: off).",
)
@click.option(
    "--signer-key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=ENV_SIGNER_KEY_FILE,
    help=f"Be a candidate to sign checkpoints with this key (or {ENV_SIGNER_KEY_FILE}); one worker is elected.",
)
@click.option(
    "--drain-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="On SIGTERM, how long to keep retrying the batch in hand while the database is down.",
)
@pass_state
def worker_command(
    state: State,
    /,
    nats_url: str | None,
    durable: str | None,
    batch_size: int | None,
    max_deliver: int | None,
    ack_wait: float | None,
    metrics_host: str,
    metrics_port: int | None,
    signer_key: Path | None,
    drain_timeout: float,
) -> None:
    """Append entries from a NATS JetStream stream to the log (PostgreSQL), acknowledging after commit.

    Start several, on one host or many: they share one durable consumer. SDKs and proxies
    publish with a ``nats://`` log URL. SIGTERM drains: the batch in hand is appended and acknowledged,
    then the worker exits. With --signer-key, the workers elect one signer of checkpoints.
    """
    from inferlog.broker.wire import NatsTarget
    from inferlog.integrity.checkpointer import CheckpointCadence, Checkpointer
    from inferlog.pipeline import Pipeline
    from inferlog.privacy.policy import Policy
    from inferlog.privacy.protect import Protection
    from inferlog.worker import MetricsServer, SignerElection, Worker, WorkerMetrics, WorkerOptions

    settings = WorkerSettings.from_env()
    url = nats_url or settings.nats
    if not url:
        raise UsageError(f"name the stream to consume: --nats nats://host:4222 (or set {ENV_NATS})")
    if not state.db.startswith(("postgresql://", "postgres://")):
        raise UsageError("inferlog worker appends to PostgreSQL: --db postgresql://...")
    target = NatsTarget.parse(url)
    options = WorkerOptions(
        durable=durable or settings.durable,
        batch_size=batch_size or settings.batch_size,
        max_deliver=max_deliver or settings.max_deliver,
        ack_wait=ack_wait or settings.ack_wait,
        drain_timeout=drain_timeout,
    )
    store = state.store(must_exist=False)
    protection = state.protection() if state.config else None
    admission = (protection or Protection(Policy.default())).admit  # as the server: a claimed seal is checked
    signer = None
    if signer_key is not None:
        signer = SignerElection(state.db, CheckpointCadence(Checkpointer.from_settings(store, signer_key)))
    metrics = WorkerMetrics()
    port = settings.metrics_port if metrics_port is None else metrics_port
    server = MetricsServer(metrics, metrics_host, port) if port else None
    worker = Worker(
        store, target, options=options, pipeline=Pipeline([admission]), metrics=metrics, signer=signer
    )

    def drain(signum: int, frame: FrameType | None) -> None:
        worker.drain()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    where = f", metrics on http://{metrics_host}:{server.port}/metrics" if server else ""
    console(stderr=True).print(
        f"inferlog worker {os.getpid()}: {target.display} -> {store.url.split('@')[-1]}{where}"
    )
    try:
        worker.run()
    finally:
        worker.close()
        if server is not None:
            server.close()
    console(stderr=True).print(
        f"inferlog worker {os.getpid()}: drained, {worker.appended} new entries appended"
    )


COMMANDS = [worker_command]
