"""JSON lines into the log, all or nothing, and idempotent (what ``inferlog import`` runs).

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.ingest.service import Ingestor
from inferlog.pipeline import Pipeline
from inferlog.privacy.frames import MAGIC as SEALED_FRAME
from inferlog.privacy.frames import FrameCipher
from inferlog.privacy.policy import Policy
from inferlog.privacy.protect import Protection
from inferlog.record.canonical import canonicalize
from inferlog.record.ids import uuid8_of
from inferlog.record.model import Entry
from inferlog.record.validate import to_entry
from inferlog.store.base import AppendResult
from inferlog.store.protocols import EntryStore

MAX_PROBLEMS = 10  # how many problems a report spells out; the rest are only counted
_decode = msgspec.json.decode
_frame_decoder = msgspec.msgpack.Decoder(Entry)  # a spool frame, as a dead letter keeps it
_Line = tuple[int, Entry | RecordInvalid, bool]  # line number, entry or why not, whether its id was derived


@dataclass
class ImportReport:
    """What an import did, or why it wrote nothing (``refused``).

    ``new`` and ``duplicate`` count entries; ``skipped`` the bad lines left out with ``skip_invalid``;
    ``conflicts`` names entries another writer put in with other content between the two passes.
    ``problems`` spells out the first :data:`MAX_PROBLEMS` bad lines as one-liners (``name: line N: why``);
    ``bad_lines`` holds the number of every bad line.
    """

    new: int = 0
    duplicate: int = 0
    skipped: int = 0
    conflicts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bad_lines: set[int] = field(default_factory=set)
    refused: bool = False

    def add(self, results: Iterable[AppendResult]) -> None:
        """Count what the ingestor did with one batch."""
        for result in results:
            if result.status == "new":
                self.new += 1
            elif result.status == "duplicate":
                self.duplicate += 1
            else:
                self.conflicts.append(f"{result.id}: {result.reason or result.status}")


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

    def read(self, stream: IO[bytes]) -> Iterator[_Line]:
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
        return uuid8_of(hashlib.sha256(content + seen.to_bytes(8, "big")).digest())


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

    Nothing is written (``refused`` in the report) when a line is bad or an id is already in the log
    with different content; with ``skip_invalid`` such lines are counted and left out instead. ``name``
    is how problems name the stream (a file name, ``stdin``); ``system`` is for lines naming none.

    With a ``protection`` (the policy file) lines are redacted, pseudonymized and sealed like any
    other record; the checks compare what redaction makes of them (sealing is never the same twice).

    For example ``import_lines(store, open("export.jsonl", "rb"), name="export.jsonl").new`` is how
    many entries a log's own export added (none, the second time).
    """
    policy = protection or Protection(Policy.default())
    ingestor = Ingestor(store, Pipeline([policy.admit]))  # a claimed seal is checked, never trusted
    keyring = policy.keyring
    lines = _Lines(system, dt.datetime.now(dt.UTC), FrameCipher(keyring).open if keyring else None)
    report = ImportReport()
    present = _check_lines(store, lines.read(stream), _comparable(policy, ingestor), report, name)
    if report.bad_lines and not skip_invalid:
        report.refused = True
        return report
    report.skipped = len(report.bad_lines)
    _append_lines(ingestor, lines.read(stream), present, report, batch_size)
    return report


def _comparable(policy: Protection, ingestor: Ingestor) -> Pipeline:
    """The pipeline whose bodies the check compares: the ingestor's, or what redaction makes of a line.

    Sealing is never the same twice, so under an active policy two sealings of one line differ.
    """
    if policy.active:
        return Pipeline([lambda entry: policy.comparable(policy.open_claim(entry))])
    return ingestor.pipeline


def _check_lines(
    store: EntryStore,
    lines: Iterator[_Line],
    check: Pipeline,
    report: ImportReport,
    name: str,
) -> set[str]:
    """The first pass: note every bad line in ``report``; return the ids the log already holds as they are.

    A line is bad when it does not make a valid entry, when its id came earlier in the file with other
    content, or when the log holds its id with other content (a derived id, or a payload purged or sealed
    since, counts as the same).
    """
    bodies: dict[str, bytes] = {}
    present: set[str] = set()

    def refuse(number: int, reason: str) -> None:
        report.bad_lines.add(number)
        if len(report.problems) < MAX_PROBLEMS:
            report.problems.append(f"{name}: line {number}: {reason}")

    for number, entry, derived in lines:
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
    return present


def _append_lines(
    ingestor: Ingestor,
    lines: Iterator[_Line],
    present: set[str],
    report: ImportReport,
    batch_size: int,
) -> None:
    """The second pass: append the good lines in batches; the ids already ``present`` count as duplicates."""
    batch: list[Entry] = []
    for number, entry, _ in lines:
        if number in report.bad_lines or isinstance(entry, RecordInvalid):
            continue
        if entry.id in present:
            report.duplicate += 1
            continue
        batch.append(entry)
        if len(batch) >= batch_size:
            report.add(ingestor.append(batch))
            batch = []
    if batch:
        report.add(ingestor.append(batch))
