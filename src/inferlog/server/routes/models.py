"""``/v1/models``: the model registry kept in the log (:mod:`inferlog.lineage`); a registration is an admin entry."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from inferlog.lineage import DIGEST_PATTERN, URI_MAX_LENGTH, register_model, registered_models
from inferlog.model_schemas import check_schema, model_schemas, record_schema
from inferlog.record.validate import _invalid, check_finite, check_storable, decode_json
from inferlog.server.body import read_body
from inferlog.server.deps import State, Who
from inferlog.server.state import ServerState

router = APIRouter(prefix="/v1", tags=["admin"])

_NO_NUL = r"^[^\x00]*$"
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=_NO_NUL)]


class ModelRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/models``: unknown fields are refused, not ignored (a typo would lose what it named)."""

    name: _Text
    version: _Text
    digest: Annotated[str, msgspec.Meta(pattern=DIGEST_PATTERN.pattern)]
    uri: Annotated[str, msgspec.Meta(min_length=1, max_length=URI_MAX_LENGTH, pattern=_NO_NUL)] | None = None
    card: dict[str, Any] | None = (
        None  # {"sha256", "bytes", "ref", "text"?}, as inferlog.lineage.card_of makes it
    )
    # {"inputs": [{"name", "datatype"?, "shape"?}], "outputs": [...]}: kept as a model.schema entry
    schema: dict[str, Any] | None = None


class SchemaRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/models/schemas``."""

    name: _Text
    version: _Text
    schema: dict[str, Any]
    source: Literal["oip", "sklearn", "user"] = (
        "user"  # who said it: a server's metadata, an estimator, a person
    )


_Body = TypeVar("_Body", ModelRequest, SchemaRequest)


def _body_doc(kind: type) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body itself."""
    schema = msgspec.json.schema(kind)
    definitions = schema.pop("$defs", {})
    body = definitions[kind.__name__] if "$ref" in schema else schema
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


async def _read(request: Request, state: ServerState, kind: type[_Body]) -> _Body:
    """The body as ``kind``, read as every other route reads one: size-limited, JSON that no store
    would change (no lone surrogate, no ``1e400``), nested within the record limit, nothing unknown.
    Refused (413/422) before anything is written."""
    data = decode_json(await read_body(request, state.max_body_bytes))
    try:
        body = msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    free = {"schema": body.schema}
    if isinstance(body, ModelRequest):
        free["card"] = body.card
    check_storable(free)
    for value in free.values():
        check_finite(value)
    return body


@router.post(
    "/models",
    status_code=201,
    summary="Register a model version (its digest and lineage URI)",
    openapi_extra=_body_doc(ModelRequest),
    responses={413: {"description": "Body over the size limit"}, 422: {"description": "A field is invalid"}},
)
async def register(request: Request, state: State, who: Who) -> dict[str, Any]:
    who.require("admin")
    body = await _read(request, state, ModelRequest)
    if body.schema is not None:  # checked before anything is written
        check_schema(body.schema)
    return await run_in_threadpool(_register, state, who.name, body)


def _register(state: ServerState, actor: str, body: ModelRequest) -> dict[str, Any]:
    registration = register_model(
        state.store, body.name, body.version, digest=body.digest, uri=body.uri, card=body.card, actor=actor
    )
    state.lineage.remember(registration)  # the sinks of this server attach it from the next record
    schema = None
    if body.schema is not None:
        schema = record_schema(state.store, body.name, body.version, body.schema, source="user", actor=actor)
    return {**registration.public_view(), "schema": schema.public_view() if schema else None}


@router.post(
    "/models/schemas",
    status_code=201,
    summary="Record a model version's input/output schema (idempotent)",
    openapi_extra=_body_doc(SchemaRequest),
    responses={413: {"description": "Body over the size limit"}, 422: {"description": "A field is invalid"}},
)
async def add_schema(request: Request, state: State, who: Who) -> dict[str, Any]:
    who.require("admin")
    body = await _read(request, state, SchemaRequest)
    made = await run_in_threadpool(
        record_schema, state.store, body.name, body.version, body.schema, source=body.source, actor=who.name
    )
    return made.public_view()


@router.get("/models/schemas", summary="The latest schema of each model version, flagged when it changed")
def list_schemas(state: State, who: Who) -> list[dict[str, Any]]:
    who.require("ingest", "reader", "auditor", "admin")
    return [s.public_view() for s in model_schemas(state.store)]


@router.get("/models", summary="Registered model versions (the latest registration of each)")
def list_models(state: State, who: Who) -> list[dict[str, Any]]:
    # Ingest keys too: a capture layer (the proxy) reads the registry to attach lineage to its records.
    who.require("ingest", "reader", "auditor", "admin")
    schemas = {(s.name, s.version): s.public_view() for s in model_schemas(state.store)}
    return [
        {**r.public_view(), "schema": schemas.get((r.name, r.version))}
        for r in registered_models(state.store)
    ]
