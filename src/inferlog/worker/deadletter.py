"""Dead letters: what a worker does with a message it cannot store.

The message goes, bytes unchanged, to the dead-letter subject (``<stream>_DEAD``) with the reason and
the delivery count in headers, so it can be re-driven after a fix; and the log itself records it as
an admin entry ``broker.dead_letter`` (no payload: the entry's id, the reason, the stream sequence).
Its id is derived from the stream sequence and its time from the message's, so a redelivered
dead letter is the same entry again (a duplicate, never a second one).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import msgspec
from nats.aio.msg import Msg

from inferlog.broker import wire
from inferlog.errors import RecordInvalid
from inferlog.pipeline import Pipeline
from inferlog.record.model import AdminEntry, Entry
from inferlog.record.prepared import Prepared

DEAD_LETTER_ACTION = "broker.dead_letter"
DEAD_LETTER_ATTRIBUTE = "dead_letter"  # attributes={"dead_letter": true}: what `inferlog stats` counts
_REASON_MAX = 500


class DeadLetter(NamedTuple):
    msg: Msg
    reason: str
    entry: Entry | None  # None when the bytes did not even decode


def letter_entry(dead: DeadLetter, target: wire.NatsTarget, pipeline: Pipeline) -> Prepared:
    """The admin entry that puts a dead letter on record (deterministic, so redeliveries agree)."""
    md = dead.msg.metadata
    seq = stream_seq(dead.msg)
    details: dict[str, Any] = {
        "reason": one_line(dead.reason),
        "stream": target.stream,
        "stream_seq": seq,
        "dead_letter_subject": target.dead_letter,
    }
    if dead.entry is not None:
        details["entry_id"] = dead.entry.id
    stored_at = md.timestamp if md.timestamp is not None else dt.datetime.now(dt.UTC)
    entry = AdminEntry(
        id=wire.dead_letter_id(target.stream, seq),
        system=dead.entry.system if dead.entry is not None else "*",
        ts=stored_at.astimezone(dt.UTC),
        actor="inferlog-worker",
        action=DEAD_LETTER_ACTION,
        details=details,
        attributes={DEAD_LETTER_ATTRIBUTE: True},
    )
    try:
        return pipeline.prepare(entry)
    except RecordInvalid:  # the entry's own system name is what is wrong with it
        return pipeline.prepare(msgspec.structs.replace(entry, system="*"))


def dead_headers(dead: DeadLetter) -> dict[str, str]:
    """The headers of a dead letter's copy: its own dedup id, the reason, deliveries, where it was."""
    seq = stream_seq(dead.msg)
    return {
        wire.MSG_ID: f"dead-{seq}",
        wire.REASON: one_line(dead.reason).encode("ascii", "replace").decode("ascii"),
        wire.DELIVERIES: str(dead.msg.metadata.num_delivered),
        wire.ORIGIN_SEQ: str(seq),
    }


def one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _REASON_MAX else flat[: _REASON_MAX - 1] + "…"


def stream_seq(msg: Msg) -> int:
    seq = msg.metadata.sequence
    return seq.stream if seq is not None else 0
