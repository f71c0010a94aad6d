"""``/v1/models``: the model registry kept in the log (:mod:`inferlog.lineage`); a registration is an admin entry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from inferlog.lineage import register_model, registered_models
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


@router.post("/models", status_code=201, summary="Register a model version (its digest and lineage URI)")
def register(state: State, who: Who, body: ModelRequest) -> dict[str, Any]:
    who.require("admin")
    registration = register_model(
        state.store, body.name, body.version, digest=body.digest, uri=body.uri, card=body.card, actor=who.name
    )
    state.lineage.remember(registration)  # the sinks of this server attach it from the next record
    return registration.public_view()


@router.get("/models", summary="Registered model versions (the latest registration of each)")
def list_models(state: State, who: Who) -> list[dict[str, Any]]:
    # Ingest keys too: a capture layer (the proxy) reads the registry to attach lineage to its records.
    who.require("ingest", "reader", "auditor", "admin")
    return [r.public_view() for r in registered_models(state.store)]
