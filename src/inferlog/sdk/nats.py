"""The NATS JetStream transport: the shipper publishes spooled entries to a stream, acknowledged.

``inferlog.open("nats://host:4222?stream=INFERLOG&subject=inferlog.entries")`` records into the local
spool as always; the shipper hands batches to this transport, which publishes each entry (msgpack,
``Nats-Msg-Id`` = its id) and waits for JetStream's acknowledgement of every one. Anything short of
all acks raises, so the batch stays in the spool and is sent again later; the stream's duplicate
window drops what was already stored, and ``inferlog worker`` deduplicates by id beyond it. A broker
outage therefore loses nothing: the spool holds the backlog (``Log.pending()``, ``counters.retries``)
until the broker is back.

The entries reach the log when an ``inferlog worker`` appends them; ``new`` here means *in the stream*.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from inferlog.broker import wire
from inferlog.broker.loop import NatsLoop, gather_all
from inferlog.errors import StoreUnavailable
from inferlog.record.model import Entry
from inferlog.store.base import AppendResult


@dataclass
class PublishCounters:
    """What this transport did, since it was made."""

    published: int = 0  # entries the stream acknowledged as new
    duplicates: int = 0  # entries the stream already had (a resend inside the duplicate window)
    failed_batches: int = 0  # batches not fully acknowledged (kept in the spool, sent again)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class NatsTransport:
    """Publishes batches to a JetStream stream; one named thread (``inferlog-nats``) runs the client."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.target = wire.NatsTarget.parse(url)
        self.timeout = timeout
        self.counters = PublishCounters()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._loop = NatsLoop(self.target, name="inferlog-nats")

    def _here(self) -> NatsLoop:
        """This process's loop: a forked child makes its own (the parent's thread is not in it)."""
        with self._lock:
            if self._pid != os.getpid():
                self._loop = NatsLoop(self.target, name="inferlog-nats")
                self._pid = os.getpid()
            return self._loop

    @property
    def connected(self) -> bool:
        return self._here().connected

    def send(self, batch: Sequence[Entry]) -> list[AppendResult]:
        if not batch:
            return []
        messages = [(entry.id, wire.encode(entry)) for entry in batch]
        loop = self._here()
        try:
            acks = loop.run(lambda: self._publish(loop, messages), self.timeout + 1)
        except Exception:
            self.counters.failed_batches += 1
            raise
        results = []
        for entry_id, duplicate in zip((m[0] for m in messages), acks, strict=True):
            if duplicate:
                self.counters.duplicates += 1
                results.append(AppendResult(entry_id, None, "duplicate"))
            else:
                self.counters.published += 1
                results.append(AppendResult(entry_id, None, "new"))
        return results

    async def _publish(self, loop: NatsLoop, messages: list[tuple[str, bytes]]) -> list[bool]:
        """Publish every message concurrently; each one's ``duplicate`` flag, or raise if any failed."""
        js = await loop.jetstream()
        subject, stream = self.target.subject, self.target.stream
        outcomes = await gather_all(
            [
                js.publish(
                    subject, data, timeout=self.timeout, stream=stream, headers={wire.MSG_ID: entry_id}
                )
                for entry_id, data in messages
            ]
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            raise StoreUnavailable(
                f"{len(failures)} of {len(messages)} entries were not acknowledged by {self.target.display}: "
                f"{failures[0] or type(failures[0]).__name__}"
            )
        return [bool(getattr(ack, "duplicate", False)) for ack in outcomes]

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection and join the client's thread (at most ``timeout`` seconds)."""
        if self._pid == os.getpid():
            self._loop.close(timeout)
