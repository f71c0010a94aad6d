"""The proxy ASGI app: forward everything unchanged, record each ``POST /v2/models/{name}/infer``.

Bytes pass through as the upstream sent them (a gzip body stays gzip, with its ``Content-Encoding``);
only infer calls are read whole, because their record needs the request and the decoded response.
Other routes (health, metadata) are streamed straight through. Recording only spools
(``Log.record``), so it adds no round trip. It runs in a worker thread, never on the event loop:
``record()`` blocks while the spool is full (up to the Log's ``block_timeout``), and on the loop that
would stall every request the proxy carries, not just the one being recorded. With a fail-closed Log,
an inference that cannot be made durable is answered 503 instead of the model's result.

The upstream client is aiohttp, not httpx: on the same loopback call httpx's async client cost about
1 ms and aiohttp's about 0.4 ms (bench/proxy.py measures the whole proxy). The upstream's ``Date``
and ``Server`` headers are passed on too, so serve the app with uvicorn's own turned off
(``server_header=False, date_header=False``, as ``inferlog proxy`` does), or the caller gets each twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import aiohttp
import httpx
import msgspec
from multidict import CIMultiDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from inferlog.errors import NotDurable
from inferlog.ingest import oip
from inferlog.record.ids import is_uuid
from inferlog.record.model import ErrorInfo
from inferlog.sdk.capture import record_for_caller
from inferlog.sdk.client import Log

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "x-request-id"}
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
NOT_DURABLE = {"error": "the inference could not be logged durably"}


def _json(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested past any parser: kept as text
        return {"body": data.decode("utf-8", "replace")}


def _decoded(raw: bytes, encoding: str | None) -> bytes:
    """The body as the model wrote it (``Content-Encoding`` undone), for the record only."""
    if not encoding:
        return raw
    try:
        return httpx.Response(200, headers={"content-encoding": encoding}, content=raw).content
    except httpx.DecodingError:
        return raw


def _reply_headers(upstream: aiohttp.ClientResponse, rid: str) -> list[tuple[bytes, bytes]]:
    """The upstream's headers, repeated ones kept, hop-by-hop ones dropped, ``x-request-id`` added."""
    out = [(k.lower(), v) for k, v in upstream.raw_headers if k.lower().decode("latin-1") not in HOP_BY_HOP]
    if not any(k == b"x-request-id" for k, _ in out):
        out.append((b"x-request-id", rid.encode("latin-1")))
    return out


def _own_reply(body: dict[str, Any], status: int, rid: str) -> Response:
    """An answer the proxy makes itself (the upstream gave none, or the record failed)."""
    return JSONResponse(body, status, {"x-request-id": rid, "date": formatdate(usegmt=True)})


async def _relay(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The upstream body chunk by chunk, its connection handed back however the stream ends."""
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    finally:
        upstream.release()


def _session(timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout),
        auto_decompress=False,  # bytes pass through as sent; the record decodes its own copy
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),  # only the caller's
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def create_proxy(
    upstream: str,
    log: Log,
    *,
    identity_header: str | None = None,
    timeout: float = 60.0,
    close_log: bool = False,
) -> Starlette:
    """An app forwarding to ``upstream`` and recording infer calls through ``log`` (source "oip").

    ``close_log``: the app owns ``log`` and closes it (flushing what it recorded) when it shuts down.
    A server stopped by SIGTERM (uvicorn re-raises the signal once shut down, so code after
    ``uvicorn.run`` never runs) still delivers its last records before the process ends.
    """
    base = upstream.rstrip("/")
    metadata: dict[str, dict[str, Any]] = {}
    holder: dict[str, aiohttp.ClientSession] = {}

    def client() -> aiohttp.ClientSession:
        if "c" not in holder:  # made on first use, inside the server's event loop
            holder["c"] = _session(timeout)
        return holder["c"]

    async def model_metadata(name: str) -> dict[str, Any]:
        if name not in metadata:
            try:
                async with client().get(f"{base}/v2/models/{name}") as got:
                    raw = await got.read()
                    body = (
                        _json(_decoded(raw, got.headers.get("content-encoding"))) if got.status == 200 else {}
                    )
                metadata[name] = body if isinstance(body, dict) else {}
            except (aiohttp.ClientError, TimeoutError):
                return {}
        return metadata[name]

    def record(
        path: str,
        req_body: bytes,
        resp: Any,
        status: int,
        latency: float,
        rid: str,
        actor: str | None,
        meta: dict[str, Any],
        error: ErrorInfo | None = None,
    ) -> None:
        fields = oip.to_fields(path, _json(req_body), resp, status, meta)
        record_for_caller(  # a body the log refuses never turns the model's answer into a 500
            log,
            model=fields.model,
            input=fields.input,
            output=fields.output,
            latency_ms=latency,
            status="error" if error or fields.status == "error" else "ok",
            error=error or fields.error,
            attributes=fields.attributes,
            actor=actor,
            request_id=rid,
            id=rid if is_uuid(rid) else None,
            source="oip",
        )

    async def forward(request: Request) -> Response:
        path = request.url.path
        body = await request.body()
        rid = request.headers.get("x-request-id") or str(uuid.uuid4())
        headers: CIMultiDict[str] = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED
        )
        headers["x-request-id"] = rid
        parsed = oip.parse_infer_path(path) if request.method == "POST" else None
        actor = request.headers.get(identity_header) if identity_header else None
        url = base + path + (f"?{request.url.query}" if request.url.query else "")
        meta_task = None
        if parsed is not None and parsed[0] not in metadata:  # fetched alongside the first infer call
            meta_task = asyncio.ensure_future(model_metadata(parsed[0]))
        started = time.perf_counter()
        try:
            upstream_resp = await client().request(
                request.method, url, data=body or None, headers=headers, allow_redirects=False
            )
            if parsed is None:  # not an infer call: nothing to record, stream it through
                reply: Response = StreamingResponse(_relay(upstream_resp), upstream_resp.status)
                reply.raw_headers = _reply_headers(upstream_resp, rid)
                return reply
            try:
                raw = await upstream_resp.read()
            finally:
                upstream_resp.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if meta_task is not None:
                meta_task.cancel()
            if isinstance(exc, TimeoutError):
                return await _failed(504, "upstream timed out", exc, parsed, path, body, started, rid, actor)
            return await _failed(502, "upstream unreachable", exc, parsed, path, body, started, rid, actor)
        latency = (time.perf_counter() - started) * 1000
        meta = await meta_task if meta_task is not None else metadata.get(parsed[0], {})
        try:
            await asyncio.to_thread(
                record,
                path,
                body,
                _json(_decoded(raw, upstream_resp.headers.get("content-encoding"))),
                upstream_resp.status,
                latency,
                rid,
                actor,
                meta,
            )
        except NotDurable:
            return _own_reply(NOT_DURABLE, NotDurable.http_status, rid)
        reply = Response(raw, upstream_resp.status)
        reply.raw_headers = _reply_headers(upstream_resp, rid)
        if "content-length" not in upstream_resp.headers:  # the upstream sent it chunked; we do not
            reply.raw_headers.append((b"content-length", str(len(raw)).encode()))
        return reply

    async def _failed(
        code: int,
        message: str,
        exc: Exception,
        parsed: tuple[str, str | None] | None,
        path: str,
        body: bytes,
        started: float,
        rid: str,
        actor: str | None,
    ) -> Response:
        if parsed is not None:
            latency = (time.perf_counter() - started) * 1000
            try:
                await asyncio.to_thread(
                    record,
                    path,
                    body,
                    None,
                    code,
                    latency,
                    rid,
                    actor,
                    metadata.get(parsed[0], {}),
                    ErrorInfo(type(exc).__name__, f"{message}: {exc}" if str(exc) else message),
                )
            except NotDurable:
                return _own_reply(NOT_DURABLE, NotDurable.http_status, rid)
        return _own_reply({"error": message}, code, rid)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if "c" in holder:
            await holder.pop("c").close()
        if close_log:
            await asyncio.to_thread(log.close)

    return Starlette(
        routes=[Route("/{path:path}", forward, methods=METHODS)],
        lifespan=lifespan,
    )
