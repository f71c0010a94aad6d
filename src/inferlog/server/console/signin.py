"""``/signin`` and ``/signout``: a person exchanges an API key for a session cookie, and ends it.

The key is posted once in a form (never in a URL, which access logs keep) and checked exactly as a
bearer key is; the browser then holds only a random session id. An ingest key is refused here: it
writes records and reads nothing, so no page would show it anything.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from inferlog.errors import AuthError, Forbidden, InferlogError
from inferlog.server.auth import authenticate
from inferlog.server.console.sessions import COOKIE, CSRF_COOKIE, LIFETIME_SECONDS, same_token
from inferlog.server.console.web import (
    Who,
    check_csrf,
    current_viewer,
    form_token,
    mark_console,
    read_form,
    render,
    secure,
    sessions_of,
    set_cookie,
)
from inferlog.server.deps import State

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_console)])


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _form(request: Request, next_path: str, error: str | None = None, status_code: int = 200) -> Response:
    token, new = form_token(request)
    page = render(
        request,
        "signin.html",
        None,
        {"csrf": token, "next": next_path, "error": error, "title": "Sign in"},
        status_code=status_code,
    )
    if new:
        set_cookie(request, page, CSRF_COOKIE, token, max_age=None)
    return page


@router.get("/signin")
def signin_page(request: Request, state: State) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if not state.auth or current_viewer(request, state) is not None:
        return RedirectResponse(next_path, status_code=303)  # nothing to sign in to, or already in
    return _form(request, next_path)


@router.post("/signin")
async def signin(request: Request, state: State) -> Response:
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    if not state.auth:
        return RedirectResponse(next_path, status_code=303)
    if not same_token(form.get("csrf"), request.cookies.get(CSRF_COOKIE)):
        raise Forbidden("this form's token is missing or stale: reload the sign-in page and try again")
    try:
        key = authenticate(state.store, form.get("key", ""))
    except InferlogError as exc:  # AuthError, or a malformed key: say so on the form, 401
        return _form(request, next_path, str(exc), status_code=AuthError.http_status)
    if key.role == "ingest":
        return _form(
            request,
            next_path,
            "an ingest key only writes records; sign in with a reader, auditor or admin key",
            status_code=Forbidden.http_status,
        )
    session_id, _ = sessions_of(request).open(key.kid)
    answer = RedirectResponse(next_path, status_code=303)
    set_cookie(request, answer, COOKIE, session_id, max_age=int(LIFETIME_SECONDS))
    answer.delete_cookie(CSRF_COOKIE, path="/")
    return secure(request, answer, None)


@router.post("/signout")
async def signout(request: Request, viewer: Who) -> Response:
    form = await read_form(request)
    check_csrf(form, viewer)
    if viewer.session_id is not None:
        sessions_of(request).close(viewer.session_id)
    answer = RedirectResponse("/signin" if viewer.signed_in else "/", status_code=303)
    answer.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return secure(request, answer, None)
