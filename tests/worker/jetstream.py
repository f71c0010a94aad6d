"""What the broker tests ask JetStream directly, with a short-lived nats-py client per question."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from inferlog.broker import wire

T = TypeVar("T")


def _ask(url: str, question: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            return await question(nc)
        finally:
            await nc.close()

    # In a thread of its own: asyncio.run refuses a thread whose event loop is running (a test's
    # Playwright browser keeps one in the main thread while it is open).
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jetstream-ask") as pool:
        return pool.submit(asyncio.run, run()).result()


def stream_count(url: str, stream: str = wire.DEFAULT_STREAM) -> int:
    """How many messages the stream holds (0 if it does not exist yet)."""

    async def q(nc: Client) -> int:
        try:
            info = await nc.jetstream().stream_info(stream)
        except NotFoundError:
            return 0
        return int(info.state.messages)

    return _ask(url, q)


def consumer_state(
    url: str, durable: str = "inferlog-workers", stream: str = wire.DEFAULT_STREAM
) -> dict[str, int]:
    """The durable consumer's pending (not yet delivered) and ack_pending (delivered, not acknowledged).

    Both -1 while no worker has made the consumer yet.
    """

    async def q(nc: Client) -> dict[str, int]:
        try:
            info = await nc.jetstream().consumer_info(stream, durable)
        except NotFoundError:
            return {"pending": -1, "ack_pending": -1}
        return {"pending": int(info.num_pending or 0), "ack_pending": int(info.num_ack_pending or 0)}

    return _ask(url, q)


def publish(url: str, payloads: list[tuple[str, bytes]], subject: str = wire.DEFAULT_SUBJECT) -> None:
    """Publish raw messages (id, bytes) as the SDK transport would, making the streams if needed."""
    from inferlog.broker.loop import NatsLoop

    loop = NatsLoop(wire.NatsTarget.parse(url), name="test-publisher")
    try:

        async def go() -> None:
            js = await loop.jetstream()
            for msg_id, data in payloads:
                await js.publish(subject, data, headers={wire.MSG_ID: msg_id})

        loop.run(go, timeout=30)
    finally:
        loop.close()


def nak_times(url: str, times: int, durable: str = "inferlog-workers") -> int:
    """Fetch from the workers' durable consumer and nak, ``times`` times: a worker that keeps failing."""

    async def q(nc: Client) -> int:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            wire.DEFAULT_SUBJECT,
            durable=durable,
            stream=wire.DEFAULT_STREAM,
            config=ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=-1
            ),
        )
        delivered = 0
        for _ in range(times):
            for msg in await sub.fetch(10, timeout=5):
                delivered = max(delivered, msg.metadata.num_delivered)
                await msg.nak()
        return delivered

    return _ask(url, q)


def dead_letters(url: str, stream: str = f"{wire.DEFAULT_STREAM}_DEAD") -> list[dict[str, Any]]:
    """The dead-letter stream's messages: headers and data."""

    async def q(nc: Client) -> list[dict[str, Any]]:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg(stream, seq)
            found.append({"headers": dict(raw.headers or {}), "data": raw.data})
        return found

    return _ask(url, q)


def delete_stream(url: str, stream: str) -> None:
    async def q(nc: Client) -> None:
        await nc.jetstream().delete_stream(stream)

    _ask(url, q)


def add_stream(url: str, stream: str, subject: str) -> None:
    async def q(nc: Client) -> None:
        await nc.jetstream().add_stream(name=stream, subjects=[subject])

    _ask(url, q)


def publish_raw(url: str, msg_id: str, data: bytes, subject: str = wire.DEFAULT_SUBJECT) -> None:
    """One message published with a plain client (which makes no streams of its own)."""

    async def q(nc: Client) -> None:
        await nc.jetstream().publish(subject, data, headers={wire.MSG_ID: msg_id})

    _ask(url, q)
