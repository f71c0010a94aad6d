"""``/v1/models``: the model registry kept in the log (:mod:`inferlog.lineage`); a registration is an admin entry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from inferlog.lineage import register_model, registered_models
from inferlog.model_schemas import check_schema, model_schemas, record_schema
from inferlog.server.deps import State, Who

router = APIRouter(prefix="/v1", tags=["admin"])

_NO_NUL = r"^[^\x00]*$"


class ModelRequest(BaseModel):
    name: str = Field(min_length=1, max_length=256, pattern=_NO_NUL)
    version: str = Field(min_length=1, max_length=256, pattern=_NO_NUL)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    uri: Annotated[str, Field(max_length=4096, pattern=_NO_NUL)] | None = None
    card: dict[str, Any] | None = (
        None  # {"sha256", "bytes", "ref", "text"?}, as inferlog.lineage.card_of makes it
    )
    # {"inputs": [{"name", "datatype"?, "shape"?}], "outputs": [...]}: kept as a model.schema entry
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


class SchemaRequest(BaseModel):
    name: str = Field(min_length=1, max_length=256, pattern=_NO_NUL)
    version: str = Field(min_length=1, max_length=256, pattern=_NO_NUL)
    schema_: dict[str, Any] = Field(alias="schema")
    source: Literal["oip", "sklearn", "user"] = (
        "user"  # who said it: a server's metadata, an estimator, a person
    )


@router.post("/models", status_code=201, summary="Register a model version (its digest and lineage URI)")
def register(state: State, who: Who, body: ModelRequest) -> dict[str, Any]:
    who.require("admin")
    if body.schema_ is not None:  # checked before anything is written
        check_schema(body.schema_)
    registration = register_model(
        state.store, body.name, body.version, digest=body.digest, uri=body.uri, card=body.card, actor=who.name
    )
    state.lineage.remember(registration)  # the sinks of this server attach it from the next record
    schema = None
    if body.schema_ is not None:
        schema = record_schema(
            state.store, body.name, body.version, body.schema_, source="user", actor=who.name
        )
    return {**registration.public_view(), "schema": schema.public_view() if schema else None}


@router.post(
    "/models/schemas", status_code=201, summary="Record a model version's input/output schema (idempotent)"
)
def add_schema(state: State, who: Who, body: SchemaRequest) -> dict[str, Any]:
    who.require("admin")
    made = record_schema(
        state.store, body.name, body.version, body.schema_, source=body.source, actor=who.name
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
