"""What the commands share: the open store, the filter options, and how entries look on a terminal."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
import msgspec
from rich.console import Console
from rich.table import Table

from inferlog.config import ENV_SIGNER_KEY_FILE, Settings
from inferlog.errors import StoreUnavailable, UsageError
from inferlog.export.jsonl import export_dict
from inferlog.ingest import Ingestor
from inferlog.ingest.audit import counts_by_system, os_user, record_read
from inferlog.keystore.protection import load_protection
from inferlog.keystore.reveal import reveal
from inferlog.privacy.protect import Protection
from inferlog.privacy.seal import subject_ref
from inferlog.record.model import (
    KINDS,
    STATUSES,
    FeedbackEntry,
    InferenceRecord,
    StoredEntry,
    kind_of,
)
from inferlog.sdk.spool import undelivered
from inferlog.store import Store, open_store
from inferlog.store.base import Query

F = TypeVar("F", bound=Callable[..., Any])

_encode = msgspec.json.encode
_PIPE_WIDTH = 200


def cli_actor() -> str:
    """The actor the command line records: ``cli:<OS user>``."""
    return f"cli:{os_user()}"


class State:
    """The group's options, and the store it opens on first use (closed when the command ends)."""

    def __init__(self, ctx: click.Context, db: str, config: str | None = None) -> None:
        self.ctx = ctx
        self.db = db
        self.config = config
        self._store: Store | None = None
        self._protection: Protection | None = None

    def protection(self) -> Protection:
        """What the policy file asks for (nothing without one); its key store closes with the command."""
        if self._protection is None:
            self._protection = load_protection(self.config)
            close = getattr(self._protection.keyring, "close", None)
            if close is not None:
                self.ctx.call_on_close(close)
        return self._protection

    def filters(self, options: dict[str, Any]) -> dict[str, Any]:
        """A command's filters, with ``--subject`` as the log stores it (its pseudonym, under a key store)."""
        found = filters_of(options)
        keyring = self.protection().keyring if found.get("subject") else None
        if keyring is not None:
            found["subject"] = subject_ref(keyring, found["subject"])
        return found

    def reveal(self, entries: list[StoredEntry]) -> list[StoredEntry]:
        """Sealed entries opened, when the policy names a key store this user can read."""
        opener = self.protection().opener
        return reveal(self.store(), opener, entries) if opener is not None else entries

    def audit(
        self,
        action: str,
        purpose: str,
        query: Query,
        entries: Sequence[StoredEntry] | Mapping[str, int],
        **details: Any,
    ) -> set[str]:
        """File this command's read in the log: access entries naming the OS user, the purpose, the query.

        ``entries`` is what was read, or how many of each system; ``details`` add to the query. Raises (the command fails) if the
        log cannot take them: a read that cannot be on record does not happen quietly. Returns their ids.
        """
        counts = entries if isinstance(entries, Mapping) else counts_by_system(entries)
        scope = [query.system] if query.system is not None else None
        trail = record_read(
            Ingestor(self.store()), actor=cli_actor(), action=action, purpose=purpose, scope=scope,
            query={**query.describe(), **details}, counts=counts,
        )  # fmt: skip
        return {entry.id for entry in trail}

    def store(self, *, must_exist: bool = True) -> Store:
        """The store ``--db`` names. Reading commands refuse to create an empty SQLite file."""
        if self._store is None:
            if must_exist:
                _check_exists(self.db)
            self._store = open_store(self.db)
            self.ctx.call_on_close(self._store.close)
            if must_exist:
                note_undelivered(self._store)
        return self._store


def note_undelivered(store: Store) -> None:
    """One line on stderr when ended processes left records in the spool that the log does not hold yet.

    Such records were acknowledged, so counts and queries that leave them out would mislead without
    a word; the next program that opens the log with the SDK delivers them.
    """
    configured = Settings.from_env().spool_dir
    path = getattr(store, "path", None)
    root = Path(configured) if configured else (Path(f"{path}-spool") if path is not None else None)
    if root is None:
        return
    waiting = undelivered(root)
    if waiting:
        click.echo(
            f"note: {len(waiting)} spool folder(s) in {root} may hold records not yet in the log "
            "(a process ended before delivering them); the next inferlog.open() of this log delivers them",
            err=True,
        )


def _check_exists(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not parts.path.startswith("/"):
        return  # other backends (and malformed URLs) are the store's to judge
    path = Path(parts.path[1:])
    if parts.path[1:] and not path.exists():
        raise StoreUnavailable(f"no log at {path} (check --db or INFERLOG_DB; `inferlog demo` makes one)")


pass_state = click.make_pass_decorator(State)


def _override_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    state = ctx.find_object(State)
    if value is not None and state is not None:
        state.db = value


def accept_db(command: click.Command) -> click.Command:
    """Let ``command`` take ``--db URL`` after its own name too (``inferlog serve --db URL``), as users
    type it; it overrides the group's ``--db``. One mechanism, applied to every command that opens a log."""
    if not any(param.name == "db_override" for param in command.params):
        command.params.append(
            click.Option(
                ["--db", "db_override"],
                metavar="URL",
                expose_value=False,
                is_eager=True,
                callback=_override_db,
                help="The log to use; same as `inferlog --db URL <command>`.",
            )
        )
    return command


def require_folder(path: Path, option: str) -> None:
    """Refuse a file in a folder that is not there, naming the user's path (never a temp file's)."""
    if not path.parent.is_dir():
        raise UsageError(f"no folder {path.parent} for {option} {path}: create it first")


DEFAULT_PURPOSE = "operator inspection (cli)"


def purpose_option(func: F) -> F:
    """``--purpose``: why an operator reads payloads; kept, with who and how many, in an access entry."""
    return click.option(
        "--purpose", default=DEFAULT_PURPOSE, show_default=True,
        help="Why you read these entries; kept, with who read and how many, in an access entry.",
    )(func)  # fmt: skip


def signer_key_file_option(description: str) -> Callable[[F], F]:
    """``--key-file`` (or ``$INFERLOG_SIGNER_KEY_FILE``): the checkpoint signing key's file, as ``key_file``."""
    return click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=ENV_SIGNER_KEY_FILE,
        help=description,
    )


def filter_options(func: F) -> F:
    """The filters every reading command takes; they arrive as keyword arguments."""
    options = [
        click.option("--system", help="Only this AI system."),
        click.option("--kind", type=click.Choice(KINDS), help="Only entries of this kind."),
        click.option("--model", help="Only this model name."),
        click.option("--version", help="Only this model version."),
        click.option("--status", type=click.Choice(STATUSES), help="Only ok or failed inferences."),
        click.option("--request-id", help="Only this request id."),
        click.option("--trace-id", help="Only this trace id."),
        click.option("--session-id", help="Only this session id."),
        click.option("--subject", help="Only this data subject (pseudonymous key)."),
        click.option("--inference-id", help="Only feedback about this inference."),
        click.option("--since", help="From this time on: 30m, 1h, 7d or ISO-8601 (UTC if no zone)."),
        click.option("--until", help="Before this time: same forms as --since."),
        click.option(
            "--attr",
            multiple=True,
            metavar="KEY=VALUE",
            help="Attribute equals value (repeatable; 3, true are JSON; quote '\"3\"' for text).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def filters_of(options: dict[str, Any]) -> dict[str, Any]:
    """The subset of a command's keyword arguments that ``build_query`` takes."""
    names = (
        "system", "kind", "model", "version", "status", "request_id", "trace_id", "session_id",
        "subject", "inference_id", "since", "until", "attr",
    )  # fmt: skip
    return {name: options[name] for name in names if name in options}


def console(*, stderr: bool = False) -> Console:
    """A rich console on the current stdout/stderr (looked up now, so test runners capture it).

    Piped or redirected output gets room for whole rows instead of rich's default 80 columns.
    """
    out = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = _PIPE_WIDTH
    return out


def json_line(stored: StoredEntry) -> str:
    """An entry as one JSON line (the same shape ``export --format jsonl`` writes)."""
    return _encode(export_dict(stored)).decode("utf-8")


def pretty_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def short_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def what(stored: StoredEntry) -> str:
    """A few words on what an entry is about: the model, or the inference a feedback is for."""
    entry = stored.entry
    if isinstance(entry, InferenceRecord):
        return f"{entry.model.name}@{entry.model.version}"
    if isinstance(entry, FeedbackEntry):
        return f"on {entry.inference_id}"
    return str(getattr(entry, "action", ""))


def outcome(stored: StoredEntry) -> str:
    entry = stored.entry
    if isinstance(entry, InferenceRecord):
        return entry.status
    if isinstance(entry, FeedbackEntry):
        parts = [
            f"{name}={_compact(getattr(entry, name))}"
            for name in ("label", "outcome", "override")
            if getattr(entry, name) is not None
        ]
        return " ".join(parts)
    return ""


def _compact(value: Any, width: int = 40) -> str:
    text = _encode(value).decode("utf-8")
    return text if len(text) <= width else text[: width - 1] + "…"


# Table columns, most important first: on a narrow terminal the last ones are left out.
_PRIORITY = ("id", "seq", "model / about", "status", "ts", "ms", "kind", "system")
_ORDER = ("seq", "ts", "kind", "system", "model / about", "status", "ms", "id")
_GAP = 2
_STATUS_WIDTH = 28  # a feedback's label/override is cut short here; `show` has it whole


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text a writer chose, safe for a terminal: control characters (escape sequences) shown as ``\\xNN``."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def inert(text: str) -> str:
    """Text a writer chose, for a Rich cell: printable, and its ``[`` not read as markup."""
    return printable(text).replace("[", r"\[")


def entries_table(entries: list[StoredEntry], width: int) -> Table:
    """Entries as a table that fits ``width`` columns, dropping the least useful columns if needed."""
    rows = []
    for stored in entries:
        latency = getattr(stored.entry, "latency_ms", None)
        rows.append({
            "seq": str(stored.seq),
            "ts": short_time(stored.entry.ts),
            "kind": kind_of(stored.entry),
            "system": stored.entry.system,
            "model / about": what(stored),
            "status": outcome(stored),
            "ms": f"{latency:.2f}" if latency is not None else "",
            "id": stored.id,
        })  # fmt: skip
    natural = {name: max([len(name)] + [len(row[name]) for row in rows]) for name in _ORDER}
    natural["status"] = min(natural["status"], _STATUS_WIDTH)
    shown = list(_PRIORITY)
    while len(shown) > 2 and sum(natural[n] for n in shown) + _GAP * (len(shown) - 1) > width:
        shown.pop()
    table = Table(box=None, pad_edge=False, padding=(0, _GAP // 2), header_style="bold")
    columns = [name for name in _ORDER if name in shown]
    for name in columns:
        table.add_column(
            name, justify="right" if name in ("seq", "ms") else "left", no_wrap=True,
            overflow="fold" if name == "id" else "ellipsis",
            max_width=_STATUS_WIDTH if name == "status" else None,
            min_width=natural[name] if name == "id" else None,
        )  # fmt: skip
    for row in rows:
        cells = [inert(row[name]) for name in columns]
        if row["status"] == "error" and "status" in columns:
            cells[columns.index("status")] = "[red]error[/red]"
        table.add_row(*cells)
    return table


def summary_line(stored: StoredEntry) -> str:
    """One line per entry, for ``tail``."""
    latency = getattr(stored.entry, "latency_ms", None)
    parts = [
        f"{stored.seq:>7}",
        short_time(stored.entry.ts),
        f"{kind_of(stored.entry):<9}",
        stored.entry.system,
        what(stored),
        outcome(stored),
        f"{latency:.2f}ms" if latency is not None else "",
        stored.id,
    ]
    return printable("  ".join(part for part in parts if part))
