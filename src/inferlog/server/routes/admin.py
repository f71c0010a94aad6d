"""Key management over HTTP (admin only), through :mod:`inferlog.apikeys`: every change is an admin entry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from inferlog.apikeys import issue_key, list_keys, revoke_key
from inferlog.server.deps import State, Who

router = APIRouter(prefix="/v1", tags=["admin"])


_NO_NUL = r"^[^\x00]*$"


class KeyRequest(BaseModel):
    role: Literal["ingest", "reader", "auditor", "admin"]
    # No U+0000: PostgreSQL text cannot hold it (422 here, not a 503 from the store).
    systems: list[Annotated[str, Field(min_length=1, max_length=256, pattern=_NO_NUL)]] = Field(
        min_length=1, max_length=100
    )
    name: str = Field(min_length=1, max_length=256, pattern=_NO_NUL)


@router.post("/keys", status_code=201, summary="Create an API key (shown once)")
def create_api_key(state: State, who: Who, body: KeyRequest) -> dict[str, Any]:
    who.require("admin")
    token, stored = issue_key(state.store, body.role, body.systems, body.name, actor=who.name)
    return {"key": token, **stored.public_view()}


@router.get("/keys", summary="List API keys (never their secrets)")
def list_api_keys(state: State, who: Who) -> list[dict[str, Any]]:
    who.require("admin")
    return [k.public_view() for k in list_keys(state.store)]


@router.delete("/keys/{kid}", summary="Revoke an API key")
def revoke_api_key(
    state: State, who: Who, kid: Annotated[str, Path(max_length=64, pattern=_NO_NUL)]
) -> dict[str, Any]:
    who.require("admin")
    revoke_key(state.store, kid, actor=who.name)
    return {"kid": kid, "revoked": True}
