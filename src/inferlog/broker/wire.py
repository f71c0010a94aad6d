"""The broker contract: where entries go (a JetStream stream and subject) and what one message holds.

One message is one entry, msgpack-encoded exactly as the SDK's spool frame holds it, with the header
``Nats-Msg-Id`` set to the entry's id: within the stream's duplicate window JetStream drops a resend
(a shipper retrying a batch whose acks were lost), and past it the worker's append deduplicates by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import msgspec

from inferlog.errors import UsageError
from inferlog.record.ids import uuid8
from inferlog.record.model import Entry

SCHEMES = ("nats", "tls")
DEFAULT_STREAM = "INFERLOG"
DEFAULT_SUBJECT = "inferlog.entries"
DEFAULT_DEAD_LETTER_SUBJECT = "inferlog.dead"
DEFAULT_DUPLICATE_WINDOW = 120.0  # seconds JetStream remembers a Nats-Msg-Id
MSG_ID = "Nats-Msg-Id"
REASON = "Inferlog-Reason"
DELIVERIES = "Inferlog-Deliveries"
ORIGIN_SEQ = "Inferlog-Stream-Seq"

MAX_DUPLICATE_WINDOW = 7 * 86400.0  # a week of ids is already far more than any resend needs
_OPTIONS = ("stream", "subject", "replicas", "dead_letter", "duplicate_window")


@dataclass(frozen=True)
class NatsTarget:
    """A parsed ``nats://host:port[,host2:port]?stream=...&subject=...`` URL.

    ``replicas`` is the stream's replication factor when inferlog creates it (use 3 on a cluster);
    ``dead_letter`` is the subject (in a stream of its own, ``<stream>_DEAD``) that workers move
    poisoned messages to.
    """

    servers: tuple[str, ...]
    stream: str = DEFAULT_STREAM
    subject: str = DEFAULT_SUBJECT
    replicas: int = 1
    dead_letter: str = DEFAULT_DEAD_LETTER_SUBJECT
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.stream}_DEAD"

    @property
    def display(self) -> str:
        """The servers and stream, without credentials (for logs and errors)."""
        hosts = ",".join(server.split("://", 1)[-1].rsplit("@", 1)[-1] for server in self.servers)
        return f"nats://{hosts} stream {self.stream}"

    @classmethod
    def parse(cls, url: str) -> NatsTarget:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.netloc:
            raise UsageError(f"a NATS URL looks like nats://host:4222?stream=INFERLOG, got {url!r}")
        options = dict(parse_qsl(parts.query))
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise UsageError(f"unknown NATS URL option(s) {', '.join(unknown)}; known: {', '.join(_OPTIONS)}")
        servers = tuple(f"{parts.scheme}://{host}" for host in parts.netloc.split(","))
        try:
            replicas = int(options.get("replicas", "1"))
            window = float(options.get("duplicate_window", str(DEFAULT_DUPLICATE_WINDOW)))
        except ValueError:
            raise UsageError("replicas must be a whole number and duplicate_window seconds") from None
        if not 1 <= replicas <= 5:
            raise UsageError(f"replicas must be between 1 and 5, got {replicas}")
        if not 0 < window <= MAX_DUPLICATE_WINDOW:  # also refuses nan and inf
            raise UsageError(
                f"duplicate_window must be more than 0 and at most {MAX_DUPLICATE_WINDOW:.0f} seconds, got {window}"
            )
        return cls(
            servers=servers,
            stream=options.get("stream", DEFAULT_STREAM),
            subject=options.get("subject", DEFAULT_SUBJECT),
            replicas=replicas,
            dead_letter=options.get("dead_letter", DEFAULT_DEAD_LETTER_SUBJECT),
            duplicate_window=window,
        )


def is_nats_url(url: str) -> bool:
    return url.startswith(("nats://", "tls://"))


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


def encode(entry: Entry) -> bytes:
    """One entry as a message body."""
    return _encoder.encode(entry)


def decode(data: bytes) -> Entry:
    """A message body as an entry (msgspec.DecodeError / ValidationError if it is not one)."""
    return _decoder.decode(data)


def dead_letter_id(stream: str, stream_seq: int) -> str:
    """A stable id for the dead-letter admin entry of one stream message (its redeliveries agree)."""
    return uuid8("inferlog-dead-letter", stream, str(stream_seq))
