"""Settings: every ``INFERLOG_*`` environment variable, documented in one place and read by one loader.

Explicit arguments win over the environment, which wins over the defaults here.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inferlog.errors import UsageError

ENV_DB = "INFERLOG_DB"
"""The log's URL, e.g. ``sqlite:///inferlog.db`` (the default)."""
ENV_SYSTEM = "INFERLOG_SYSTEM"
"""The AI system records written through the SDK belong to, when ``open()`` is not told."""
ENV_SPOOL_DIR = "INFERLOG_SPOOL_DIR"
"""Where the SDK's spool lives; default: ``<database file>-spool`` beside a SQLite file."""
ENV_DURABILITY = "INFERLOG_DURABILITY"
"""``process`` (default) or ``machine``: see the durability contract."""
ENV_FAIL_CLOSED = "INFERLOG_FAIL_CLOSED"
"""``1``/``true`` to make ``record()`` raise when a record cannot be made durable."""

ENV_CONFIG = "INFERLOG_CONFIG"
"""The policy file (``inferlog.toml``): encryption, redaction, pseudonyms, retention, legal holds."""

ENV_API_KEY = "INFERLOG_API_KEY"
"""The API key the SDK presents to an ``inferlog serve`` (when ``open()`` is given an http URL)."""
ENV_SIGNER_KEY_FILE = "INFERLOG_SIGNER_KEY_FILE"
"""The checkpoint signing key (made by ``inferlog keys init-signer``); keep it off the database host."""
ENV_VERIFIER_KEY = "INFERLOG_VERIFIER_KEY"
"""A verifier key string or ``.pub`` file that ``inferlog verify`` checks checkpoint signatures with."""
ENV_CHECKPOINT_DIR = "INFERLOG_CHECKPOINT_DIR"
"""A folder (ideally another machine's or WORM storage) that receives a copy of every checkpoint."""
ENV_CHECKPOINT_WEBHOOK = "INFERLOG_CHECKPOINT_WEBHOOK"
"""An http(s) URL that every checkpoint is POSTed to (text/plain signed note)."""
ENV_CHECKPOINT_EVERY = "INFERLOG_CHECKPOINT_EVERY"
"""Make a checkpoint after this many new entries (default 1000)."""
ENV_CHECKPOINT_SECONDS = "INFERLOG_CHECKPOINT_SECONDS"
"""Make a checkpoint when new entries are this many seconds old without one (default 10)."""
ENV_KSERVE_PENDING = "INFERLOG_KSERVE_PENDING"
"""The file where the KServe sink keeps a half (request or response) until its partner arrives."""
ENV_KSERVE_TIMEOUT = "INFERLOG_KSERVE_TIMEOUT"
"""Seconds a lone KServe half waits for its partner before it is recorded alone (default 60)."""
ENV_MAX_RECORD_AGE = "INFERLOG_MAX_RECORD_AGE"
"""How old a record's ``ts`` may be when a server receives it (default 30d); ``inferlog import`` takes older."""
ENV_MAX_CLOCK_SKEW = "INFERLOG_MAX_CLOCK_SKEW"
"""How far ahead of the server's clock a record's ``ts`` may be (default 10m)."""
ENV_MONITOR_EVERY = "INFERLOG_MONITOR_EVERY"
"""How often ``inferlog serve`` evaluates the policy's alert rules (default 1m; 0 = never)."""

ENV_NATS = "INFERLOG_NATS"
"""The JetStream stream ``inferlog worker`` consumes: ``nats://host:4222?stream=INFERLOG&subject=inferlog.entries``."""
ENV_WORKER_DURABLE = "INFERLOG_WORKER_DURABLE"
"""The durable consumer the workers share (default ``inferlog-workers``): one name, many processes."""
ENV_WORKER_BATCH = "INFERLOG_WORKER_BATCH"
"""How many messages a worker fetches and appends in one transaction (default 500)."""
ENV_WORKER_MAX_DELIVER = "INFERLOG_WORKER_MAX_DELIVER"
"""After this many deliveries a message goes to the dead-letter subject (default 5)."""
ENV_WORKER_ACK_WAIT = "INFERLOG_WORKER_ACK_WAIT"
"""Seconds a fetched message may stay unacknowledged before JetStream redelivers it (default 30)."""
ENV_WORKER_METRICS_PORT = "INFERLOG_WORKER_METRICS_PORT"
"""The port of a worker's ``/metrics`` and ``/healthz`` (default 9464; 0 turns them off)."""

DEFAULT_DB = "sqlite:///inferlog.db"
DEFAULT_SIGNER_KEY_FILE = "inferlog-signer.key"
DEFAULT_SYSTEM = "default"
DEFAULT_KSERVE_TIMEOUT = 60.0
DEFAULT_MAX_RECORD_AGE = "30d"
DEFAULT_MAX_CLOCK_SKEW = "10m"
DEFAULT_MONITOR_EVERY = "1m"

SETTINGS = {
    ENV_DB: "the log's URL (default sqlite:///inferlog.db)",
    ENV_SYSTEM: "the AI system SDK records belong to (default 'default')",
    ENV_SPOOL_DIR: "the SDK's spool folder (default: <db file>-spool)",
    ENV_DURABILITY: "process (default) or machine",
    ENV_FAIL_CLOSED: "1/true: record() raises when a record cannot be made durable",
    ENV_CONFIG: "the policy file, inferlog.toml (privacy and retention)",
    ENV_API_KEY: "API key the SDK sends to an inferlog server",
    ENV_SIGNER_KEY_FILE: "the checkpoint signing key file (default ./inferlog-signer.key)",
    ENV_VERIFIER_KEY: "verifier key (string or .pub file) for `inferlog verify`",
    ENV_CHECKPOINT_DIR: "folder receiving a copy of every checkpoint (off-box)",
    ENV_CHECKPOINT_WEBHOOK: "URL every checkpoint is POSTed to (off-box)",
    ENV_CHECKPOINT_EVERY: "checkpoint after this many new entries (default 1000)",
    ENV_CHECKPOINT_SECONDS: "checkpoint when new entries wait this long (default 10)",
    ENV_KSERVE_PENDING: "the KServe sink's pending-halves file (default: <db file>-kserve-pending.db, or under the user's data dir)",
    ENV_KSERVE_TIMEOUT: "seconds a lone KServe half waits for its partner (default 60)",
    ENV_MAX_RECORD_AGE: "how old a record's ts may be when the server receives it: 90s, 30m, 12h, 30d, 2w "
    "(default 30d; `inferlog import` takes older records)",
    ENV_MAX_CLOCK_SKEW: "how far ahead of the server's clock a record's ts may be (default 10m)",
    ENV_MONITOR_EVERY: "how often the server evaluates the policy's alert rules: 30s, 1m, 5m (default 1m; 0 = never)",
    ENV_NATS: "the JetStream stream `inferlog worker` consumes (nats://host:4222?stream=INFERLOG&subject=inferlog.entries)",
    ENV_WORKER_DURABLE: "the durable consumer name the workers share (default inferlog-workers)",
    ENV_WORKER_BATCH: "messages a worker fetches and appends per transaction (default 500)",
    ENV_WORKER_MAX_DELIVER: "deliveries after which a message is dead-lettered (default 5)",
    ENV_WORKER_ACK_WAIT: "seconds before JetStream redelivers an unacknowledged message (default 30)",
    ENV_WORKER_METRICS_PORT: "port of a worker's /metrics and /healthz (default 9464; 0: off)",
}

DURABILITY_LEVELS = ("process", "machine")


def user_data_dir() -> Path:
    """Where inferlog keeps files of its own that must outlive a restart (``$XDG_DATA_HOME/inferlog``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "inferlog"


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    system: str = DEFAULT_SYSTEM
    spool_dir: str | None = None
    durability: str = "process"
    fail_closed: bool = False
    config: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        durability = env.get(ENV_DURABILITY, "process")
        if durability not in DURABILITY_LEVELS:
            raise UsageError(f"{ENV_DURABILITY} must be 'process' or 'machine', got {durability!r}")
        return cls(
            db=env.get(ENV_DB) or DEFAULT_DB,
            system=env.get(ENV_SYSTEM) or DEFAULT_SYSTEM,
            spool_dir=env.get(ENV_SPOOL_DIR) or None,
            durability=durability,
            fail_closed=_flag(env.get(ENV_FAIL_CLOSED, ""), ENV_FAIL_CLOSED),
            config=env.get(ENV_CONFIG) or None,
        )


@dataclass(frozen=True)
class WorkerSettings:
    """What ``inferlog worker`` reads from the environment (its options override each)."""

    nats: str | None = None
    durable: str = "inferlog-workers"
    batch_size: int = 500
    max_deliver: int = 5
    ack_wait: float = 30.0
    metrics_port: int = 9464

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if environ is None else environ
        return cls(
            nats=env.get(ENV_NATS) or None,
            durable=env.get(ENV_WORKER_DURABLE) or cls.durable,
            batch_size=_int_setting(env, ENV_WORKER_BATCH, cls.batch_size, low=1, high=100_000),
            max_deliver=_int_setting(env, ENV_WORKER_MAX_DELIVER, cls.max_deliver, low=1, high=1000),
            ack_wait=float(_int_setting(env, ENV_WORKER_ACK_WAIT, int(cls.ack_wait), low=1, high=86_400)),
            metrics_port=_int_setting(env, ENV_WORKER_METRICS_PORT, cls.metrics_port, low=0, high=65_535),
        )


def _int_setting(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high}, got {value}")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration_setting(name: str, default: str, environ: Mapping[str, str] | None = None) -> dt.timedelta:
    """A duration from the environment variable ``name`` (``90s``, ``30m``, ``12h``, ``30d``, ``2w``, or
    seconds), else from ``default``; anything else, or a negative or absurd one, is a UsageError."""
    env = os.environ if environ is None else environ
    text = (env.get(name) or default).strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in _DURATION_UNITS else (text, "s")
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
        value = dt.timedelta(seconds=seconds)
    except (ValueError, OverflowError):
        raise UsageError(f"{name} must be a duration like 30m, 12h or 30d, got {text!r}") from None
    if not dt.timedelta(0) <= value <= dt.timedelta(days=365_000):
        raise UsageError(f"{name} must be between 0 and 1000 years, got {text!r}")
    return value


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("", "0", "false", "no", "off"):
        return False
    if lowered in ("1", "true", "yes", "on"):
        return True
    raise UsageError(f"{name} must be true or false, got {value!r}")
