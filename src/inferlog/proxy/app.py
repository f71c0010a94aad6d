"""The proxy ASGI app: forward everything unchanged, record each ``POST /v2/models/{name}/infer``.

Bytes pass through as the upstream sent them (a gzip body stays gzip, with its ``Content-Encoding``);
only infer calls are read whole, because their record needs the request and the decoded response.
Other routes (health, metadata) are streamed straight through. The model metadata the proxy reads
(``GET /v2/models/{name}``) gives each model version's schema, recorded once per process as a
``model.schema`` entry (:meth:`Log.capture_schema`). Recording only spools
(``Log.record``), so it adds no round trip. It runs on the event loop only when nothing in it can
wait (``Log.records_without_waiting``: durability ``process``, no policy, room in the spool), else in
a worker thread: ``record()`` blocks while the spool is full (up to the Log's ``block_timeout``), and
on the loop that would stall every request the proxy carries, not just the one being recorded. (The
thread hop cost more than the record: bench/proxy.py.) With a fail-closed Log,
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
from dataclasses import dataclass
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
from inferlog.model_schemas import oip_schema
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


@dataclass(slots=True)
class _InferCall:
    """One infer call on its way: what its record needs, the outcome filled in once it is known."""

    path: str
    body: bytes
    rid: str
    actor: str | None
    model: str
    started: float = 0.0
    status: int = 0  # the upstream's, or the proxy's own 502/504
    answer: Any = None  # the decoded response body
    latency: float = 0.0  # ms
    error: ErrorInfo | None = None


def _failure(exc: Exception) -> tuple[int, str]:
    """The status and message the caller gets when the upstream gave no answer."""
    if isinstance(exc, TimeoutError):
        return 504, "upstream timed out"
    return 502, "upstream unreachable"


class _Proxy:
    """One proxy app's state (upstream, log, metadata cache, client session), a method per step.

    Made once per app. Per request it adds nothing but, for an infer call, one small ``_InferCall``
    carrying what the record needs (the hot path is measured by bench/proxy.py).
    """

    def __init__(
        self, upstream: str, log: Log, identity_header: str | None, timeout: float, close_log: bool
    ) -> None:
        self.base = upstream.rstrip("/")
        self.log = log
        self.identity_header = identity_header
        self.timeout = timeout
        self.close_log = close_log
        self.metadata: dict[str, dict[str, Any]] = {}
        self.schemas_sent: set[tuple[str, str]] = (
            set()
        )  # model versions whose metadata schema went to the log
        self._client: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        if self._client is None:  # made on first use, inside the server's event loop
            self._client = _session(self.timeout)
        return self._client

    async def forward(self, request: Request) -> Response:
        """The one route: an infer call is read whole and recorded, anything else streamed through."""
        path = request.url.path
        body = await request.body()
        rid = request.headers.get("x-request-id") or str(uuid.uuid4())
        headers: CIMultiDict[str] = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED
        )
        headers["x-request-id"] = rid
        parsed = oip.parse_infer_path(path) if request.method == "POST" else None
        url = self.base + path + (f"?{request.url.query}" if request.url.query else "")
        if parsed is None:  # not an infer call: nothing to record
            return await self._pass_through(request.method, url, body, headers, rid)
        actor = request.headers.get(self.identity_header) if self.identity_header else None
        return await self._infer(url, headers, _InferCall(path, body, rid, actor, parsed[0]))

    async def _pass_through(
        self, method: str, url: str, body: bytes, headers: CIMultiDict[str], rid: str
    ) -> Response:
        """Any call but an infer call: the upstream's answer streamed straight back."""
        try:
            upstream = await self.client().request(
                method, url, data=body or None, headers=headers, allow_redirects=False
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            code, message = _failure(exc)
            return _own_reply({"error": message}, code, rid)
        reply = StreamingResponse(_relay(upstream), upstream.status)
        reply.raw_headers = _reply_headers(upstream, rid)
        return reply

    async def _infer(self, url: str, headers: CIMultiDict[str], call: _InferCall) -> Response:
        """An infer call: forwarded, its answer read whole, recorded, then passed on."""
        meta_task = None
        if call.model not in self.metadata:  # fetched alongside the first infer call
            meta_task = asyncio.ensure_future(self.model_metadata(call.model))
        call.started = time.perf_counter()
        try:
            upstream = await self.client().request(
                "POST", url, data=call.body or None, headers=headers, allow_redirects=False
            )
            try:
                raw = await upstream.read()
            finally:
                upstream.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if meta_task is not None:
                meta_task.cancel()
            return await self._failed(call, exc)
        call.latency = (time.perf_counter() - call.started) * 1000
        meta = await meta_task if meta_task is not None else self.metadata.get(call.model, {})
        call.status = upstream.status
        call.answer = _json(_decoded(raw, upstream.headers.get("content-encoding")))
        refused = await self._record(call, meta)
        if refused is not None:
            return refused
        reply = Response(raw, upstream.status)
        reply.raw_headers = _reply_headers(upstream, call.rid)
        if "content-length" not in upstream.headers:  # the upstream sent it chunked; we do not
            reply.raw_headers.append((b"content-length", str(len(raw)).encode()))
        return reply

    async def _failed(self, call: _InferCall, exc: Exception) -> Response:
        """An infer call the upstream did not answer: recorded as an error, answered 502 or 504."""
        code, message = _failure(exc)
        call.latency = (time.perf_counter() - call.started) * 1000
        call.status = code
        call.error = ErrorInfo(type(exc).__name__, f"{message}: {exc}" if str(exc) else message)
        refused = await self._record(call, self.metadata.get(call.model, {}))
        if refused is not None:
            return refused
        return _own_reply({"error": message}, code, call.rid)

    async def model_metadata(self, name: str) -> dict[str, Any]:
        """The upstream's metadata for a model (platform, tensors), kept once it was read."""
        if name not in self.metadata:
            try:
                async with self.client().get(f"{self.base}/v2/models/{name}") as got:
                    raw = await got.read()
                    body = (
                        _json(_decoded(raw, got.headers.get("content-encoding"))) if got.status == 200 else {}
                    )
                self.metadata[name] = body if isinstance(body, dict) else {}
            except (aiohttp.ClientError, TimeoutError):
                return {}
        return self.metadata[name]

    async def _record(self, call: _InferCall, meta: dict[str, Any]) -> Response | None:
        """Record the call; the 503 to answer instead if the log refused it.

        On the event loop when nothing in it can wait (:meth:`Log.records_without_waiting`, and no
        schema of a new model version to send to the store): a hop to a worker thread cost more than
        the record itself. Else in a worker thread, so a wait never stalls the other requests.
        """
        fields = oip.to_fields(call.path, _json(call.body), call.answer, call.status, meta)
        version = (fields.model.name, fields.model.version)
        try:
            if self.log.records_without_waiting() and (not meta or version in self.schemas_sent):
                self._write(call, fields, meta)
            else:
                await asyncio.to_thread(self._write, call, fields, meta)
        except NotDurable:
            return _own_reply(NOT_DURABLE, NotDurable.http_status, call.rid)
        return None

    def _write(self, call: _InferCall, fields: oip.OipFields, meta: dict[str, Any]) -> None:
        """The call as a record, through the Log (its spool may block: see :meth:`_record`)."""
        error = call.error
        record_for_caller(  # a body the log refuses never turns the model's answer into a 500
            self.log,
            model=fields.model,
            input=fields.input,
            output=fields.output,
            latency_ms=call.latency,
            status="error" if error or fields.status == "error" else "ok",
            error=error or fields.error,
            attributes=fields.attributes,
            actor=call.actor,
            request_id=call.rid,
            id=call.rid if is_uuid(call.rid) else None,
            source="oip",
        )
        version = (fields.model.name, fields.model.version)
        if meta and version not in self.schemas_sent:  # once per model version per process
            self.schemas_sent.add(version)
            self.log.capture_schema(fields.model, oip_schema(meta), "oip")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        if self.close_log:
            await asyncio.to_thread(self.log.close)


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
    proxy = _Proxy(upstream, log, identity_header, timeout, close_log)
    return Starlette(
        routes=[Route("/{path:path}", proxy.forward, methods=METHODS)],
        lifespan=proxy.lifespan,
    )
