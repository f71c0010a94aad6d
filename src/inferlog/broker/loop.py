"""nats-py is asyncio; the shipper and the worker are threads. One named thread owns the event loop and
the connection; callers hand it coroutines and wait for their results (``run(coro, timeout)``).

The connection is made lazily and made again after a failure: a broker that is down when the
transport starts, or that stays down longer than the client's own reconnect attempts, raises
:class:`~inferlog.errors.StoreUnavailable` to the caller (who keeps the data and retries), never a hang.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from inferlog.broker.wire import NatsTarget
from inferlog.errors import StoreUnavailable, UsageError

try:
    import nats
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the NATS transport and worker need nats-py: pip install 'inferlog[nats]'") from exc

log = logging.getLogger("inferlog.broker")
T = TypeVar("T")


class NatsLoop:
    """One event loop in one named daemon thread, and the NATS connection it owns."""

    def __init__(self, target: NatsTarget, *, name: str, connect_timeout: float = 2.0) -> None:
        self.target = target
        self.name = name
        self.connect_timeout = connect_timeout
        self.disconnects = 0
        self.generation = 0  # how many connections were made: a subscription belongs to one
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._streams_ready = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    # -- running coroutines from other threads -------------------------------------------------

    def run(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
        """Run ``make()`` on the loop; its result, or its exception, or StoreUnavailable on timeout."""
        if self._closed:
            raise UsageError(f"the {self.name} connection is closed")
        future = asyncio.run_coroutine_threadsafe(make(), self._loop)
        try:
            return future.result(timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            future.cancel()
            raise StoreUnavailable(f"{self.target.display} did not answer within {timeout:g}s") from None

    def submit(self, make: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        """Start ``make()`` on the loop and return at once; its future holds the outcome."""
        if self._closed:
            raise UsageError(f"the {self.name} connection is closed")
        return asyncio.run_coroutine_threadsafe(make(), self._loop)

    @property
    def connected(self) -> bool:
        nc = self._nc
        return nc is not None and nc.is_connected

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, connecting (and making the streams) first if need be."""
        nc = self._nc
        if nc is None or nc.is_closed:
            self._nc = self._js = None
            self._streams_ready = False
            try:
                nc = await nats.connect(
                    servers=list(self.target.servers),
                    name=self.name,
                    connect_timeout=self.connect_timeout,
                    allow_reconnect=True,
                    max_reconnect_attempts=1,  # a first connect tries each server twice, then raises
                    reconnect_time_wait=0.25,
                    disconnected_cb=self._disconnected,
                    error_cb=self._error,
                )
            except Exception as exc:  # any failure to connect means: not now, retry
                raise StoreUnavailable(
                    f"cannot connect to {self.target.display}: {exc or type(exc).__name__}"
                ) from exc
            # Once connected, reconnect forever: a restarted broker is found again, and publishes wait
            # in the client's buffer meanwhile (nats-py reads this option at each reconnect).
            nc.options["max_reconnect_attempts"] = -1
            self._nc = nc
            self.generation += 1
            self._js = nc.jetstream(timeout=5.0)
        if self._js is None:  # pragma: no cover - set together with _nc above
            raise StoreUnavailable(f"no JetStream context for {self.target.display}")
        if not nc.is_connected:  # reconnecting: say so now rather than buffer and wait for a timeout
            raise StoreUnavailable(f"{self.target.display} is unreachable (reconnecting)")
        if not self._streams_ready:
            await self._ensure_streams(self._js)
            self._streams_ready = True
        return self._js

    async def _ensure_streams(self, js: JetStreamContext) -> None:
        """The entries stream and its dead-letter stream, made if missing (file storage, dedup window)."""
        t = self.target
        for name, subject in ((t.stream, t.subject), (t.dead_letter_stream, t.dead_letter)):
            try:
                await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(
                    StreamConfig(
                        name=name,
                        subjects=[subject],
                        storage=StorageType.FILE,
                        num_replicas=t.replicas,
                        duplicate_window=t.duplicate_window,
                    )
                )

    async def _disconnected(self) -> None:
        self.disconnects += 1

    async def _error(self, exc: Exception) -> None:
        log.debug("%s: %s", self.name, exc)

    async def flush(self, timeout: int) -> None:
        if self._nc is not None and self._nc.is_connected:
            await self._nc.flush(timeout=timeout)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Drain and close the connection, then stop the loop and join its thread."""
        if self._closed:
            return
        self._closed = True

        async def shut() -> None:
            nc, self._nc = self._nc, None
            if nc is not None and not nc.is_closed:
                try:
                    await asyncio.wait_for(nc.close(), timeout)
                except Exception as exc:  # noqa: BLE001 - closing is best effort; the broker keeps the data
                    log.debug("closing %s: %s", self.name, exc)
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:  # the client's readers and flushers: ended here, not left to the GC
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout + 1)
        except Exception as exc:  # noqa: BLE001 - closing is best effort; the broker keeps the data
            log.debug("closing %s: %s", self.name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()


async def gather_all(awaitables: list[Awaitable[T]]) -> list[T | BaseException]:
    """Every result or exception, in order (one failed publish does not hide the others' outcome)."""
    return list(await asyncio.gather(*awaitables, return_exceptions=True))
