"""The console: the log in a browser, served by ``inferlog serve`` at ``/``.

Server-rendered Jinja2 pages with a little JavaScript (htmx for the filters, uPlot for charts, and
our own proof checker); every browser file is served from the package (``assets/``, origins in
``assets/SOURCES.json``), so the console works offline and loads nothing from another host.
People sign in with an API key (:mod:`.sessions`); roles are the API's own.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from inferlog.server.console import monitoring, pages, signin, status
from inferlog.server.console.sessions import Sessions
from inferlog.server.console.web import ASSET_URL, ASSETS, error_page

__all__ = ["ASSETS", "error_page", "install", "is_console"]


def install(app: FastAPI) -> None:
    """Add the console's pages, assets and sessions to ``app``."""
    app.state.console_sessions = Sessions()
    app.state.console_last_verify = None
    app.mount(ASSET_URL, StaticFiles(directory=ASSETS), name="console-assets")
    for router in (signin.router, pages.router, status.router, monitoring.router):
        app.include_router(router)


def is_console(request: Request) -> bool:
    """Whether an error on this request should be shown as a console page rather than JSON."""
    return bool(getattr(request.state, "console", False))
