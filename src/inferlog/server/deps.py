"""FastAPI dependencies: the server state and the principal behind a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from inferlog.errors import AuthError
from inferlog.server.auth import OPEN, Principal, authenticate, principal_of
from inferlog.server.state import ServerState


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.inferlog
    return state


State = Annotated[ServerState, Depends(get_state)]


def _principal(request: Request, state: ServerState, query_key: bool) -> Principal:
    if not state.auth:
        return OPEN
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not token and query_key:
        token = request.query_params.get("key", "")
    if not token:
        raise AuthError("an API key is required (Authorization: Bearer ilog_...)")
    return principal_of(authenticate(state.store, token))


def get_principal(request: Request, state: State) -> Principal:
    """From ``Authorization: Bearer <key>`` or ``X-API-Key``."""
    return _principal(request, state, query_key=False)


def get_principal_or_query_key(request: Request, state: State) -> Principal:
    """Also from a ``key`` query parameter: only for senders that cannot set headers (KServe's logger).

    Keys in URLs end up in access logs, so no other route accepts one there.
    """
    return _principal(request, state, query_key=True)


Who = Annotated[Principal, Depends(get_principal)]
WhoFromUrl = Annotated[Principal, Depends(get_principal_or_query_key)]
