"""The worker: a durable JetStream pull consumer that appends what it fetches to the log.

Many worker processes share one durable consumer, so JetStream spreads the messages among them.
Each loop of a worker:

1. fetches a batch (at most ``batch_size`` messages, waiting at most ``fetch_wait`` seconds);
2. does the per-record work outside any lock, in parallel with the other workers: decode, validate,
   the privacy policy's admission (redact, pseudonymize, seal), canonical body, commitment, leaf hash;
3. appends the batch in one transaction under the log's sequencer (the store's advisory lock keeps
   one Merkle order, however many workers append);
4. acknowledges the messages only after that commit.

A worker killed between 3 and 4 leaves its messages unacknowledged: JetStream redelivers them (after
``ack_wait``) and the append answers ``duplicate`` for each, so every entry is in the log exactly once.
While the store is down the worker keeps its batch, retries with backoff and tells JetStream it is
still working on it (``+WPI``), so an outage does not count as a delivery.

A message that cannot be stored goes to the dead-letter subject (a stream of its own, holding the
original bytes and the reason): at once when it can never be stored (undecodable, refused by
validation or the policy, a conflicting id), and after ``max_deliver`` deliveries otherwise (a poison
message that kills or stalls its workers). Each dead letter is also put on record as an admin entry
(``broker.dead_letter``, no payload) in the same transaction as its batch: the log itself says which
entry it does not hold and why, ``inferlog stats`` counts them, and no broker access is needed to see it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext

from inferlog.broker import wire
from inferlog.broker.loop import NatsLoop, gather_all
from inferlog.errors import IntegrityError, RecordInvalid, StoreUnavailable
from inferlog.ingest.window import AcceptedWindow
from inferlog.pipeline import Pipeline
from inferlog.record.model import Entry
from inferlog.record.prepared import Prepared
from inferlog.store.base import AppendResult
from inferlog.store.protocols import EntryWriter
from inferlog.worker.deadletter import DeadLetter, dead_headers, letter_entry, stream_seq
from inferlog.worker.metrics import WorkerMetrics
from inferlog.worker.signing import SignerElection

log = logging.getLogger("inferlog.worker")

_MAX_BACKOFF = 2.0


@dataclass(frozen=True)
class WorkerOptions:
    durable: str = "inferlog-workers"
    batch_size: int = 500
    max_deliver: int = 5
    ack_wait: float = 30.0
    fetch_wait: float = 1.0  # seconds a fetch waits for messages; also how soon a drain is noticed
    drain_timeout: float = 30.0  # how long a draining worker keeps retrying an append the store refuses
    housekeeping_every: float = 1.0  # seconds between lag reads and signer ticks


class Worker:
    """One worker process's consumer loop. ``run()`` until ``drain()``; then ``close()``."""

    def __init__(
        self,
        store: EntryWriter,
        target: wire.NatsTarget,
        *,
        options: WorkerOptions | None = None,
        pipeline: Pipeline | None = None,
        metrics: WorkerMetrics | None = None,
        signer: SignerElection | None = None,
        name: str = "inferlog-worker",
        window: AcceptedWindow | None = None,
    ) -> None:
        self.store = store
        # The times a server accepts, measured from when JetStream stored the message (a lagging worker
        # refuses nothing a server would have taken at publish time; a producer cannot backdate).
        self.window = window or AcceptedWindow.from_env()
        self.target = target
        self.options = options or WorkerOptions()
        self.pipeline = pipeline or Pipeline()
        self.metrics = metrics or WorkerMetrics()
        self.signer = signer
        self.loop = NatsLoop(target, name=f"{name}-nats")
        self.appended = 0  # new entries this worker appended
        self.dead_lettered = 0
        self._admin_pipeline = Pipeline()
        self._sub: Any = None  # nats-py's PullSubscription, made on the first fetch
        self._sub_generation = 0
        self._draining = threading.Event()
        self._next_housekeeping = 0.0
        self._broker_error = ""
        self._acks: list[concurrent.futures.Future[None]] = []
        self._ahead: concurrent.futures.Future[list[Msg]] | None = None  # the batch fetched ahead

    # -- the loop -----------------------------------------------------------------------------

    def drain(self) -> None:
        """Stop fetching; the batch in hand is finished (appended and acknowledged) first."""
        self._draining.set()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def run(self) -> None:
        """Fetch, append, acknowledge, until drained.

        The next batch is fetched while this one is prepared and appended (the client's thread waits
        on the network, this one works), so a worker rarely waits for the broker. A drain finishes
        both batches in hand, this one and the one fetched ahead, and fetches no more.
        """
        backoff = 0.05
        ahead: concurrent.futures.Future[list[Msg]] | None = None
        drained = False
        try:
            while not self._draining.is_set():
                try:
                    messages = self._fetched(ahead) if ahead is not None else self._fetch()
                except Exception as exc:  # noqa: BLE001 - the broker is down or restarting: wait, retry
                    ahead = self._ahead = None
                    self._broker_down(exc)
                    self._draining.wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    continue
                ahead = self._ahead = None
                backoff = 0.05
                if messages:
                    ahead = self._ahead = self.loop.submit(self._fetch_async)
                    self._process_safely(messages)
                self._housekeeping()
            drained = True
        finally:
            if ahead is not None and drained:  # not after a broken ledger: nothing more is appended
                self._finish_ahead(ahead)
            self._wait_for_acks()
            if self.signer is not None:
                if drained:
                    self.signer.tick(final=True)  # sign what arrived since the last checkpoint
                self.signer.close()

    def _process_safely(self, messages: Sequence[Msg]) -> None:
        """Process a batch; a failure leaves it unacknowledged (JetStream redelivers it), except a
        broken ledger, which stops the worker: appending to it would only hide the damage."""
        try:
            self.process(messages)
        except IntegrityError:
            raise
        except Exception as exc:  # e.g. the dead-letter publish failed: redelivered later
            self.metrics.broker_errors.inc()
            log.exception("a batch of %d messages failed and will be redelivered: %s", len(messages), exc)

    def _fetch(self) -> list[Msg]:
        return self.loop.run(self._fetch_async, timeout=self.options.fetch_wait + 10)

    def _fetched(self, ahead: concurrent.futures.Future[list[Msg]]) -> list[Msg]:
        try:
            return ahead.result(timeout=self.options.fetch_wait + 10)
        except concurrent.futures.TimeoutError:
            ahead.cancel()
            raise StoreUnavailable(f"{self.target.display} did not answer a fetch") from None

    def _finish_ahead(self, ahead: concurrent.futures.Future[list[Msg]]) -> None:
        """Draining: the batch fetched ahead is in hand too, so it is appended and acknowledged as well."""
        try:
            messages = self._fetched(ahead)
        except Exception as exc:  # noqa: BLE001 - not fetched after all: nothing in hand
            log.debug("the batch fetched ahead did not arrive: %s", exc)
            return
        if messages:
            self._process_safely(messages)

    async def _fetch_async(self) -> list[Msg]:
        js = await self.loop.jetstream()
        if self._sub is None or self._sub_generation != self.loop.generation:  # a new connection
            self._sub = await self._subscribe(js)
            self._sub_generation = self.loop.generation
        try:
            messages: list[Msg] = await self._sub.fetch(
                self.options.batch_size, timeout=self.options.fetch_wait
            )
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        return messages

    async def _subscribe(self, js: JetStreamContext) -> Any:
        config = ConsumerConfig(
            durable_name=self.options.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.options.ack_wait,
            max_deliver=-1,  # the worker counts deliveries itself and dead-letters (with a reason)
            max_ack_pending=-1,
        )
        return await js.pull_subscribe(
            self.target.subject, durable=self.options.durable, stream=self.target.stream, config=config
        )

    def _broker_down(self, exc: BaseException) -> None:
        self.metrics.broker_errors.inc()
        self.metrics.health = {"status": "degraded", "reason": f"broker: {exc or type(exc).__name__}"}
        if str(exc) != self._broker_error:
            self._broker_error = str(exc)
            log.warning(
                "fetching from %s failed (retrying): %s", self.target.display, exc or type(exc).__name__
            )

    # -- one batch ----------------------------------------------------------------------------

    def process(self, messages: Sequence[Msg]) -> None:
        """Prepare, append in one transaction, then acknowledge (and dead-letter what cannot be stored)."""
        self.metrics.batch_size.observe(len(messages))
        self.metrics.redeliveries.inc(sum(1 for msg in messages if msg.metadata.num_delivered > 1))
        started = time.perf_counter()
        outcome = self._prepare_retrying(messages)
        if outcome is None:
            return  # drained while the key store was down: nothing acknowledged, JetStream redelivers
        ready, dead = outcome
        letters = [self._letter(d) for d in dead]
        self.metrics.prepare_seconds.observe(time.perf_counter() - started)
        results = self._append([p for _, p in ready] + letters, messages)
        if results is None:
            return  # drained while the store was down: nothing acknowledged, JetStream redelivers
        refused = []
        for (msg, prepared), result in zip(ready, results, strict=False):
            if result.status in ("new", "duplicate"):
                self.metrics.records.labels(result.status).inc()
                self.appended += result.status == "new"
            else:
                refused.append(DeadLetter(msg, f"{result.status}: {result.reason}", prepared.entry))
        if refused:  # known only after the append: put them on record in a second transaction
            later = self._append([self._letter(d) for d in refused], messages)
            if later is None:
                return
            dead += refused
        if dead:
            self._publish_dead(dead)
        self._ack(messages)
        self.metrics.health = {"status": "ok", "appended": self.appended}

    def _prepare_retrying(
        self, messages: Sequence[Msg]
    ) -> tuple[list[tuple[Msg, Prepared]], list[DeadLetter]] | None:
        """The batch prepared; while the policy's key store is unavailable, wait and try again (the
        batch stays in hand, marked in progress, so the outage does not count as deliveries)."""
        backoff = 0.05
        waited_since: float | None = None
        while True:
            try:
                return self._prepare(messages)
            except StoreUnavailable as exc:
                log.warning(
                    "preparing %d entries failed (retrying in %.2fs): %s", len(messages), backoff, exc
                )
                self.metrics.health = {"status": "degraded", "reason": f"key store: {exc}"}
            if self._draining.is_set():
                waited_since = waited_since or time.monotonic()
                if time.monotonic() - waited_since > self.options.drain_timeout:
                    return None
            self._still_working(messages)
            time.sleep(min(backoff, self.options.ack_wait / 3))  # +WPI again before ack_wait runs out
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _prepare(self, messages: Sequence[Msg]) -> tuple[list[tuple[Msg, Prepared]], list[DeadLetter]]:
        """Each message decoded and prepared, or set aside as a dead letter with its reason."""
        ready: list[tuple[Msg, Prepared]] = []
        dead: list[DeadLetter] = []
        for msg in messages:
            delivered = msg.metadata.num_delivered
            entry: Entry | None = None
            try:
                entry = wire.decode(msg.data)
            except Exception as exc:  # noqa: BLE001 - whatever is wrong with the bytes, they cannot be stored
                dead.append(DeadLetter(msg, f"undecodable: {type(exc).__name__}: {exc}", None))
                continue
            if delivered > self.options.max_deliver:
                reason = f"delivered more than {self.options.max_deliver} times without being stored"
                dead.append(DeadLetter(msg, reason, entry))
                continue
            try:
                self.window.check_time(entry.ts, now=msg.metadata.timestamp)
                ready.append((msg, self.pipeline.prepare(entry)))
            except RecordInvalid as exc:
                dead.append(DeadLetter(msg, f"invalid: {exc}", entry))
            except StoreUnavailable:
                raise  # the key store: the whole batch waits
            except Exception as exc:  # noqa: BLE001 - one entry the policy cannot process; the rest go on
                dead.append(DeadLetter(msg, f"cannot be prepared: {type(exc).__name__}: {exc}", entry))
        return ready, dead

    def _append(self, batch: list[Prepared], messages: Sequence[Msg]) -> list[AppendResult] | None:
        """Append under the sequencer, retrying while the store is unavailable; None if drained first."""
        backoff = 0.05
        draining_since: float | None = None
        while True:
            started = time.perf_counter()
            try:
                results = self.store.append(batch) if batch else []
            except StoreUnavailable as exc:
                self.metrics.store_errors.inc()
                self.metrics.health = {"status": "degraded", "reason": f"store: {exc}"}
                log.warning("appending %d entries failed (retrying in %.2fs): %s", len(batch), backoff, exc)
            except IntegrityError:
                raise  # the database was changed outside inferlog: stop, and say so
            else:
                self.metrics.append_seconds.observe(time.perf_counter() - started)
                return results
            if self._draining.is_set():
                draining_since = draining_since or time.monotonic()
                if time.monotonic() - draining_since > self.options.drain_timeout:
                    log.warning(
                        "drained with %d messages unappended: JetStream redelivers them", len(messages)
                    )
                    return None
            self._still_working(messages)
            time.sleep(min(backoff, self.options.ack_wait / 3))  # +WPI again before ack_wait runs out
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _letter(self, dead: DeadLetter) -> Prepared:
        return letter_entry(dead, self.target, self._admin_pipeline)

    def _publish_dead(self, dead: list[DeadLetter]) -> None:
        """Copy each dead letter to the dead-letter stream (original bytes, reason in a header)."""

        async def publish() -> None:
            js = await self.loop.jetstream()
            outcomes = await gather_all(
                [
                    js.publish(
                        self.target.dead_letter,
                        d.msg.data,
                        timeout=5.0,
                        stream=self.target.dead_letter_stream,
                        headers=dead_headers(d),
                    )
                    for d in dead
                ]
            )
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:
                raise StoreUnavailable(f"{len(failed)} dead letters not acknowledged: {failed[0]}")

        self.loop.run(publish, timeout=15)  # raising here leaves the batch unacknowledged: redelivered
        self.metrics.dead_letters.inc(len(dead))
        self.dead_lettered += len(dead)
        for d in dead:
            log.error("message %s dead-lettered: %s", stream_seq(d.msg), d.reason)

    def _ack(self, messages: Sequence[Msg]) -> None:
        """Acknowledge after the commit, without waiting for the broker's receipt (the next batch is
        already in hand): a lost ack means a redelivery, which the append answers as duplicates."""

        async def ack() -> None:
            if not self.loop.connected:  # reconnecting: acks would wait in a buffer; a redelivery is cheaper
                raise StoreUnavailable(f"{self.target.display} is unreachable")
            for msg in messages:
                await msg.ack()
            await self.loop.flush(timeout=5)

        def done(future: concurrent.futures.Future[None]) -> None:
            exc = None if future.cancelled() else future.exception()
            if exc is not None:
                self.metrics.broker_errors.inc()
                log.warning(
                    "acknowledging %d messages failed (they come back as duplicates): %s", len(messages), exc
                )

        self._acks = [a for a in self._acks if not a.done()]
        future = self.loop.submit(ack)
        future.add_done_callback(done)
        self._acks.append(future)

    def _wait_for_acks(self, timeout: float = 10.0) -> None:
        """Before stopping: let the acknowledgements in flight reach the broker."""
        concurrent.futures.wait(self._acks, timeout=timeout)
        self._acks = []

    def _still_working(self, messages: Sequence[Msg]) -> None:
        """Tell JetStream the batches in hand (this one and the one fetched ahead) are being worked on
        (+WPI), so a long store outage neither redelivers them nor counts towards ``max_deliver``."""
        ahead = self._ahead
        held = list(messages)
        if ahead is not None and ahead.done() and not ahead.cancelled() and ahead.exception() is None:
            held += ahead.result()

        async def progress() -> None:
            for msg in held:
                await msg.in_progress()

        try:
            self.loop.run(progress, timeout=5)
        except Exception as exc:  # noqa: BLE001 - at worst the batch is redelivered: duplicates, not loss
            log.debug("in-progress acknowledgement failed: %s", exc)

    # -- lag, health, the signer --------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self.options.housekeeping_every
        self.refresh_lag()
        if self.signer is not None:
            if self.signer.tick() is not None:
                self.metrics.checkpoints.inc()
            self.metrics.signer.set(1 if self.signer.leader else 0)

    def refresh_lag(self) -> int | None:
        """Read the consumer's lag (messages pending + unacknowledged) into the metrics."""
        if self._sub is None:
            return None

        async def info() -> int:
            found = await self._sub.consumer_info()
            return int(found.num_pending or 0) + int(found.num_ack_pending or 0)

        try:
            lag = self.loop.run(info, timeout=5)
        except Exception as exc:  # noqa: BLE001 - a broker hiccup: the next look will tell
            log.debug("reading the consumer's lag failed: %s", exc)
            return None
        self.metrics.lag.set(lag)
        if self.loop.connected and self.metrics.health.get("status") != "degraded":
            self.metrics.health = {"status": "ok", "appended": self.appended}
        return lag

    def close(self, timeout: float = 5.0) -> None:
        self.loop.close(timeout)
