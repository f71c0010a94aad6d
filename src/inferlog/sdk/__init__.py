"""The in-process producer: ``inferlog.open(...)`` returns a :class:`Log`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from inferlog.broker.wire import is_nats_url
from inferlog.config import ENV_API_KEY, ENV_SIGNER_KEY_FILE, Settings
from inferlog.errors import UsageError
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.keystore.protection import load_protection
from inferlog.retention.governance import Governance
from inferlog.sdk.client import Durability, Log
from inferlog.sdk.http import HttpReader, HttpTransport
from inferlog.sdk.transport import CapturingTransport, StoreTransport, Transport
from inferlog.store import Store, open_store

__all__ = ["CapturingTransport", "HttpReader", "HttpTransport", "Log", "StoreTransport", "Transport", "open"]


def open(
    url: str | None = None,
    *,
    system: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    durability: Durability | None = None,
    fail_closed: bool | None = None,
    signer_key: str | os.PathLike[str] | None = None,
    api_key: str | None = None,
    config: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Log:
    """Open an inference log.

    ``url`` names the log (default ``$INFERLOG_DB`` or ``sqlite:///inferlog.db``): a database URL, or
    the ``http(s)://`` address of an ``inferlog serve`` with an ingest ``api_key`` (or
    ``$INFERLOG_API_KEY``), or a ``nats://host:4222?stream=...&subject=...`` JetStream stream that
    ``inferlog worker`` processes append to the log (see docs/deployment.md). ``system`` names the AI system whose records this handle writes. Records
    pass through a spool folder (default: beside the SQLite file) that makes them durable before
    ``record()`` returns.

    With a signing key (``signer_key`` or ``$INFERLOG_SIGNER_KEY_FILE``) the log signs checkpoints on
    a cadence and copies them to ``$INFERLOG_CHECKPOINT_DIR`` / ``$INFERLOG_CHECKPOINT_WEBHOOK``.

    With a policy file (``config`` or ``$INFERLOG_CONFIG``) records are redacted, pseudonymized and
    sealed as it says before they reach the spool (see docs/privacy.md); opened on a database, the
    policy is recorded in the log (an admin entry) if the log does not already hold this version.
    """
    settings = Settings.from_env()
    url = url or settings.db
    config = config or settings.config
    common: dict[str, Any] = {
        "protection": load_protection(config) if config else None,
        "system": system or settings.system,
        "durability": durability or settings.durability,
        "fail_closed": settings.fail_closed if fail_closed is None else fail_closed,
        **options,
    }
    if is_nats_url(url):  # records go to a JetStream stream; `inferlog worker` appends them to the log
        from inferlog.sdk.nats import NatsTransport  # nats-py is an optional extra

        return Log(
            NatsTransport(url), spool_dir=spool_dir or settings.spool_dir or "inferlog-spool", **common
        )
    if url.startswith(("http://", "https://")):
        key = api_key or os.environ.get(ENV_API_KEY)
        return Log(
            HttpTransport(url, key),
            reader=HttpReader(url, key),
            spool_dir=spool_dir or settings.spool_dir or "inferlog-spool",
            **common,
        )
    store = open_store(url)
    try:
        return _embedded(store, spool_dir or settings.spool_dir, signer_key, common)
    except BaseException:
        with contextlib.suppress(Exception):  # the reason open failed matters more than a failed close
            store.close()  # a failed open must not leave a connection pool behind
        raise


def _embedded(
    store: Store,
    spool_dir: str | os.PathLike[str] | None,
    signer_key: str | os.PathLike[str] | None,
    common: dict[str, Any],
) -> Log:
    """A Log writing straight into an open store (which the caller closes if this raises)."""
    protection = common["protection"]
    if protection is not None:  # every policy change is on record, whoever opens the log with it
        Governance(store, protection.policy, protection.keyring, actor="sdk").record_policy()
    signer = signer_key or os.environ.get(ENV_SIGNER_KEY_FILE)
    return Log(
        StoreTransport(store),
        store=store,
        checkpointer=Checkpointer.from_settings(store, signer) if signer else None,
        spool_dir=spool_dir or _default_spool(store),
        **common,
    )


def _default_spool(store: Any) -> Path:
    path = getattr(store, "path", None)
    if path is None:
        raise UsageError("this store has no file to put the spool beside: pass spool_dir=")
    return Path(f"{path}-spool")
