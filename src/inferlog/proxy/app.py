"""The proxy ASGI app: forward everything unchanged, record each ``POST /v2/models/{name}/infer``.

Recording only spools (``Log.record``), so it adds no round trip. With a fail-closed Log, an
inference that cannot be made durable is answered 503 instead of the model's result.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inferlog.errors import NotDurable
from inferlog.ingest import oip
from inferlog.record.ids import is_uuid
from inferlog.record.model import ErrorInfo
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
        "host",
        "content-length",
    }
)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def _json(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return {"body": data.decode("utf-8", "replace")}


def create_proxy(
    upstream: str,
    log: Log,
    *,
    identity_header: str | None = None,
    timeout: float = 60.0,
) -> Starlette:
    """An app forwarding to ``upstream`` and recording infer calls through ``log`` (source "oip")."""
    base = upstream.rstrip("/")
    metadata: dict[str, dict[str, Any]] = {}
    holder: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        if "c" not in holder:
            holder["c"] = httpx.AsyncClient(timeout=timeout)
        return holder["c"]

    async def model_metadata(name: str) -> dict[str, Any]:
        if name not in metadata:
            try:
                got = await client().get(f"{base}/v2/models/{name}")
                body = got.json() if got.status_code == 200 else {}
                metadata[name] = body if isinstance(body, dict) else {}
            except (httpx.HTTPError, ValueError):
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
        log.record(
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
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-request-id"] = rid
        infer = request.method == "POST" and oip.parse_infer_path(path) is not None
        actor = request.headers.get(identity_header) if identity_header else None
        url = base + path + (f"?{request.url.query}" if request.url.query else "")
        started = time.perf_counter()
        try:
            upstream_resp = await client().request(request.method, url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return _failed(504, "upstream timed out", exc, infer, path, body, started, rid, actor)
        except httpx.HTTPError as exc:
            return _failed(502, "upstream unreachable", exc, infer, path, body, started, rid, actor)
        latency = (time.perf_counter() - started) * 1000
        out_headers = {
            k: v
            for k, v in upstream_resp.headers.items()
            if k.lower() not in HOP_BY_HOP | {"content-encoding"}
        }
        out_headers.setdefault("x-request-id", rid)
        if infer:
            parsed = oip.parse_infer_path(path)
            meta = await model_metadata(parsed[0]) if parsed else {}
            try:
                record(
                    path,
                    body,
                    _json(upstream_resp.content),
                    upstream_resp.status_code,
                    latency,
                    rid,
                    actor,
                    meta,
                )
            except NotDurable:
                return JSONResponse(
                    {"error": "the inference could not be logged durably"}, 503, {"x-request-id": rid}
                )
        return Response(upstream_resp.content, upstream_resp.status_code, out_headers)

    def _failed(
        code: int,
        message: str,
        exc: Exception,
        infer: bool,
        path: str,
        body: bytes,
        started: float,
        rid: str,
        actor: str | None,
    ) -> Response:
        if infer:
            latency = (time.perf_counter() - started) * 1000
            try:
                record(
                    path,
                    body,
                    None,
                    code,
                    latency,
                    rid,
                    actor,
                    {},
                    ErrorInfo(type(exc).__name__, f"{message}: {exc}"),
                )
            except NotDurable:
                return JSONResponse(
                    {"error": "the inference could not be logged durably"}, 503, {"x-request-id": rid}
                )
        return JSONResponse({"error": message}, code, {"x-request-id": rid})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if "c" in holder:
            await holder.pop("c").aclose()

    return Starlette(
        routes=[Route("/{path:path}", forward, methods=METHODS)],
        lifespan=lifespan,
    )
