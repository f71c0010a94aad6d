"""FastAPI dependencies: the server state and the principal behind a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from inferlog.server.auth import OPEN, AuthError, Principal, authenticate, principal_of
from inferlog.server.state import ServerState


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.inferlog
    return state


State = Annotated[ServerState, Depends(get_state)]


def get_principal(request: Request, state: State) -> Principal:
    """From ``Authorization: Bearer <key>``, ``X-API-Key`` or a ``key`` query parameter (KServe's logger)."""
    if not state.auth:
        return OPEN
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    token = token or request.query_params.get("key", "")
    if not token:
        raise AuthError("an API key is required (Authorization: Bearer ilog_...)")
    return principal_of(authenticate(state.store, token))


Who = Annotated[Principal, Depends(get_principal)]
