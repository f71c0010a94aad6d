"""``inferlog import``: JSON lines into the log, all or nothing, and idempotent.

Two passes over the file. The first validates every line (and checks that no id is already in the log
with other content) without writing anything; only a clean file reaches the second, which appends in
batches through the :class:`~inferlog.ingest.Ingestor`, like every other way in.

Importing the same file twice adds nothing: entries keep their ``id``; a line without one gets an id
derived from its content (and from how many identical lines came before it), and a line without a
``ts`` gets the time the import started.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

import click
import msgspec

from inferlog.cli._common import State, pass_state
from inferlog.errors import RecordInvalid, UsageError
from inferlog.ingest import Ingestor
from inferlog.pipeline import Pipeline
from inferlog.privacy.frames import MAGIC as SEALED_FRAME
from inferlog.privacy.frames import FrameCipher
from inferlog.privacy.policy import Policy
from inferlog.privacy.protect import Protection
from inferlog.record.canonical import canonicalize
from inferlog.record.model import Entry
from inferlog.record.validate import to_entry
from inferlog.store.protocols import EntryStore

_MAX_SHOWN = 10
_decode = msgspec.json.decode
_frame_decoder = msgspec.msgpack.Decoder(Entry)  # a spool frame, as a dead letter keeps it


@dataclass
class ImportReport:
    """What an import did (or, when ``problems`` is not empty, refused to do)."""

    new: int = 0
    duplicate: int = 0
    skipped: int = 0  # invalid lines left out with --skip-invalid
    conflicts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the first few, as one-liners
    bad_lines: set[int] = field(default_factory=set)


class _Lines:
    """Turns the lines of one file into entries, the same way on every pass.

    A line of an SDK's ``dead-letter/`` file (``{"reason": …, "record": …}``) stands for its record, so
    what a server refused (older than its accepted window, say) comes in by importing that file.
    """

    def __init__(
        self, system: str | None, started: dt.datetime, open_frame: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.system = system
        self.started = started
        self.open_frame = open_frame  # spool frames sealed whole (a policy with a key store)

    def read(self, stream: IO[bytes]) -> Iterator[tuple[int, Entry | RecordInvalid, bool]]:
        """(line number, entry or why not, whether the id was derived) for each non-blank line."""
        stream.seek(0)
        occurrences: dict[bytes, int] = {}
        for number, raw in enumerate(stream, 1):
            if not raw.strip():
                continue
            try:
                data = _decode(raw)
            except msgspec.DecodeError as exc:
                yield number, RecordInvalid(f"not valid JSON ({exc})"), False
                continue
            if not isinstance(data, dict):
                yield number, RecordInvalid(f"expected a JSON object, got {type(data).__name__}"), False
                continue
            try:
                data = self._letter_record(data)
            except RecordInvalid as exc:
                yield number, exc, False
                continue
            derived = "id" not in data
            try:
                if derived:
                    data["id"] = self._derived_id(data, occurrences)
                data.setdefault("ts", self.started)
                entry = to_entry(data, system=self.system, source="import")
            except RecordInvalid as exc:
                yield number, exc, derived
                continue
            yield number, entry, derived

    def _letter_record(self, data: dict[str, Any]) -> dict[str, Any]:
        """A dead letter's record (its entry, or the spool frame it kept), else the line as it is."""
        record = data.get("record")
        if data.keys() != {"reason", "record"} or not isinstance(record, dict):
            return data
        if record.keys() != {"frame"}:
            return record
        try:
            frame = base64.b64decode(record["frame"], validate=True)
            if self.open_frame is not None:
                frame = self.open_frame(frame)
            elif frame.startswith(SEALED_FRAME):
                raise RecordInvalid("is sealed under a key store: import with the --config that names it")
            found: dict[str, Any] = msgspec.to_builtins(_frame_decoder.decode(frame))
        except RecordInvalid as exc:
            raise RecordInvalid(exc.reason, field="record.frame") from None
        except Exception as exc:  # noqa: BLE001 - whatever the kept frame holds, it is this line's problem
            raise RecordInvalid(
                f"the dead letter's frame cannot be read: {type(exc).__name__}: {str(exc)[:200]}",
                field="record.frame",
            ) from None
        return found

    def _derived_id(self, data: dict[str, Any], occurrences: dict[bytes, int]) -> str:
        content = hashlib.sha256(
            b"inferlog-import\0" + (self.system or "").encode() + b"\0" + canonicalize(data)
        ).digest()
        seen = occurrences.get(content, 0)
        occurrences[content] = seen + 1
        raw = bytearray(hashlib.sha256(content + seen.to_bytes(8, "big")).digest()[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8 (RFC 9562: custom)
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
        return str(uuid.UUID(bytes=bytes(raw)))


def import_lines(
    store: EntryStore,
    stream: IO[bytes],
    *,
    system: str | None = None,
    batch_size: int = 1000,
    skip_invalid: bool = False,
    name: str = "input",
    protection: Protection | None = None,
) -> ImportReport:
    """Validate every line of a seekable binary stream, then append them unless one was bad.

    With ``skip_invalid`` bad lines are counted and left out instead. Nothing is written when a
    line is bad (by default) or an id is already in the log with different content.

    With a ``protection`` (the policy file) lines are redacted, pseudonymized and sealed like any
    other record; the checks compare what redaction makes of them (sealing is never the same twice).
    """
    policy = protection or Protection(Policy.default())
    ingestor = Ingestor(store, Pipeline([policy.admit]))  # a claimed seal is checked, never trusted
    check = ingestor.pipeline
    if policy.active:  # sealing is never the same twice: compare what the policy makes of a line
        check = Pipeline([lambda entry: policy.comparable(policy.open_claim(entry))])
    keyring = policy.keyring
    lines = _Lines(system, dt.datetime.now(dt.UTC), FrameCipher(keyring).open if keyring else None)
    report = ImportReport()
    bodies: dict[str, bytes] = {}
    present: set[str] = set()

    def refuse(number: int, reason: str) -> None:
        report.bad_lines.add(number)
        if len(report.problems) < _MAX_SHOWN:
            report.problems.append(f"{name}: line {number}: {reason}")

    for number, entry, derived in lines.read(stream):
        if isinstance(entry, RecordInvalid):
            where = f"field `{entry.field}`: " if entry.field else ""
            refuse(number, where + entry.reason)
            continue
        try:
            body = check.prepare(entry).body
        except RecordInvalid as exc:
            refuse(number, str(exc))
            continue
        digest = hashlib.blake2b(body, digest_size=16).digest()
        earlier = bodies.setdefault(entry.id, digest)
        if earlier != digest:
            refuse(number, f"id {entry.id} appears earlier in the file with different content")
            continue
        stored = store.get(entry.id)
        if stored is None:
            continue
        if derived or stored.body is None or stored.body == body or stored.entry.sealed is not None:
            present.add(entry.id)
        else:
            refuse(number, f"id {entry.id} is already in the log with different content")
    if report.bad_lines and not skip_invalid:
        return report
    report.skipped = len(report.bad_lines)

    batch: list[Entry] = []

    def append() -> None:
        for result in ingestor.append(batch):
            if result.status == "new":
                report.new += 1
            elif result.status == "duplicate":
                report.duplicate += 1
            else:
                report.conflicts.append(f"{result.id}: {result.reason or result.status}")
        batch.clear()

    for number, entry, _ in lines.read(stream):
        if number in report.bad_lines or isinstance(entry, RecordInvalid):
            continue
        if entry.id in present:
            report.duplicate += 1
            continue
        batch.append(entry)
        if len(batch) >= batch_size:
            append()
    if batch:
        append()
    return report


@click.command("import")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--system", help="System for lines that do not name one.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--skip-invalid", is_flag=True, help="Import the good lines and report the bad ones.")
@pass_state
def import_command(
    state: State, /, source: str, system: str | None, batch_size: int, skip_invalid: bool
) -> None:
    """Import entries from JSON lines, all or nothing.

    Reads a file, or stdin with -, such as an `export --format jsonl`.

    Every line is checked before anything is written: one bad line and nothing is imported.
    Importing the same file again adds nothing.
    """
    with ExitStack() as stack:
        if source == "-":
            if sys.stdin.isatty():
                raise UsageError("give a FILE, or pipe JSON lines in: inferlog import - < entries.jsonl")
            stream: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(sys.stdin.buffer, stream)
            name = "stdin"
        else:
            stream = stack.enter_context(open(source, "rb"))
            name = source
        report = import_lines(
            state.store(must_exist=False), stream, system=system, batch_size=batch_size,
            skip_invalid=skip_invalid, name=name, protection=state.protection() if state.config else None,
        )  # fmt: skip
    bad = len(report.bad_lines)
    if bad and not skip_invalid:
        if bad == 1:
            raise UsageError(f"{report.problems[0]}; nothing was imported")
        for problem in report.problems:
            click.echo(problem, err=True)
        more = f" (first {_MAX_SHOWN} above)" if bad > _MAX_SHOWN else " (above)"
        raise UsageError(f"{bad} bad lines in {name}{more}; nothing was imported")
    for problem in report.problems:
        click.echo(click.style(f"skipped {problem}", fg="yellow"), err=True)
    parts = [f"{report.new} new", f"{report.duplicate} duplicate"]
    if report.skipped:
        parts.append(f"{report.skipped} invalid skipped")
    click.echo(f"imported {name}: {', '.join(parts)}")
    if report.conflicts:
        for conflict in report.conflicts[:_MAX_SHOWN]:
            click.echo(f"conflict: {conflict}", err=True)
        raise UsageError(f"{len(report.conflicts)} entries conflict with entries written meanwhile")


COMMANDS = [import_command]
