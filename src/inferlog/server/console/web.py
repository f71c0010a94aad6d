"""What every console page shares: who is looking (from the session cookie), form tokens, rendering.

Roles and systems come from the same :class:`~inferlog.server.auth.Principal` the API builds from a
bearer key, so a page allows exactly what the matching API call allows. Errors raised by a page are
the library's own (``AuthError``, ``Forbidden``, ``NotFound``, ``BadParameter``) and are shown as an
HTML page with the status the API would answer (see :func:`error_page`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from inferlog import __version__
from inferlog.errors import AuthError, BadParameter, Forbidden, InferlogError, NotFound
from inferlog.server.auth import OPEN, Principal, principal_of
from inferlog.server.body import read_body
from inferlog.server.console.sessions import COOKIE, CSRF_COOKIE, Session, Sessions, same_token
from inferlog.server.deps import State
from inferlog.server.state import ServerState

HERE = Path(__file__).parent
ASSETS = HERE / "assets"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
ASSET_URL = "/console/assets"

# Pages fetch nothing from another host, run no inline script, and cannot be framed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_FORM_BYTES = 64 * 1024


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.console_sessions
    return sessions


@dataclass
class Viewer:
    """Who is looking at a page, and the token their forms must carry back."""

    principal: Principal
    csrf: str
    session: Session | None = None
    session_id: str | None = None
    new_csrf_cookie: bool = False  # the double-submit cookie must be set with this response
    signed_in: bool = field(init=False)

    def __post_init__(self) -> None:
        self.signed_in = self.session is not None

    def can(self, *roles: str) -> bool:
        return self.principal.allows(*roles)


def mark_console(request: Request) -> None:
    """Router-level dependency: errors on this request become HTML pages (see app.py's handler)."""
    request.state.console = True


def form_token(request: Request) -> tuple[str, bool]:
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32:
        return token, False
    return secrets.token_urlsafe(32), True


def current_viewer(request: Request, state: State) -> Viewer | None:
    """The viewer behind this request, or None when a key is needed and there is no live session."""
    if not state.auth:  # loopback --no-auth: everyone is the all-powerful anonymous caller
        token, new = form_token(request)
        return Viewer(OPEN, token, new_csrf_cookie=new)
    session_id = request.cookies.get(COOKIE, "")
    session = sessions_of(request).get(session_id) if session_id else None
    if session is None:
        return None
    key = state.store.get_api_key(session.kid)
    if key is None or key.revoked_at is not None:  # revoked since sign-in: the session ends with it
        sessions_of(request).close(session_id)
        return None
    return Viewer(principal_of(key), session.csrf, session, session_id)


def get_viewer(request: Request, state: State) -> Viewer:
    viewer = current_viewer(request, state)
    if viewer is None:
        raise AuthError("sign in with an API key to see this page")
    return viewer


Who = Annotated[Viewer, Depends(get_viewer)]


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a repeated name)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadParameter("send this form as application/x-www-form-urlencoded", field="content-type")
    body = await read_body(request, MAX_FORM_BYTES)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise BadParameter("the form is not UTF-8", field="body") from exc
    return {name: values[-1] for name, values in fields.items()}


def check_csrf(form: dict[str, str], viewer: Viewer) -> None:
    """Refuse a POST whose form token is not this viewer's (a request forged by another site)."""
    if viewer.new_csrf_cookie or not same_token(form.get("csrf"), viewer.csrf):
        raise Forbidden("this form's token is missing or stale: reload the page and try again")


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """A template rendered for ``viewer``, with the headers every console page carries."""
    state: ServerState = request.app.state.inferlog
    page = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "auth": state.auth,
            "assets": ASSET_URL,
            "version": __version__,
            "path": request.url.path,
            **(context or {}),
        },
        status_code=status_code,
    )
    return secure(request, page, viewer)


def secure(request: Request, response: Response, viewer: Viewer | None) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"  # record ids and purposes stay on this host
    response.headers["Cache-Control"] = "no-store"  # payloads must not linger in a shared cache
    if viewer is not None and viewer.new_csrf_cookie:
        set_cookie(request, response, CSRF_COOKIE, viewer.csrf, max_age=None)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Strict, path /, and Secure whenever the page came over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def error_page(request: Request, exc: InferlogError) -> Response:
    """An error on a console page: sign-in for a missing session (GET), else a page with the API's status."""
    state: ServerState = request.app.state.inferlog
    if isinstance(exc, AuthError) and request.method == "GET" and state.auth:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?{urlencode({'next': target})}", status_code=303)
    viewer = current_viewer(request, state) if not isinstance(exc, AuthError) else None
    titles = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 422: "Bad input"}
    status = exc.http_status
    page = render(
        request,
        "error.html",
        viewer,
        {
            "title": titles.get(status, "Error"),
            "status": status,
            "message": str(exc),
            "field": exc.field if isinstance(exc, BadParameter) else None,
        },
        status_code=status,
    )
    if status == 401:
        page.headers["WWW-Authenticate"] = 'Cookie realm="inferlog console"'
    return page


def not_found_page(request: Request, what: str) -> Response:
    return error_page(request, NotFound(what))
