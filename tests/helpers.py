"""Small helpers the test modules share: free ports, polling until something happens, typed entries.

Fixtures live in the ``fix_*`` plugins and the ``conftest.py`` files; this module holds plain functions,
so a test, a fixture or a benchmark can import them alike.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from inferlog.record.model import AccessEntry, AdminEntry, Entry, FeedbackEntry, InferenceRecord, StoredEntry
from inferlog.store import Store, open_store

if TYPE_CHECKING:
    from playwright.sync_api import Browser

T = TypeVar("T")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
E = TypeVar("E", InferenceRecord, FeedbackEntry, AccessEntry, AdminEntry)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(probe: Callable[[], T], what: str, seconds: float = 10.0, interval: float = 0.02) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    Fails the test naming ``what`` when ``seconds`` pass first: a test that waits on another thread or
    process says what never happened instead of hanging.
    """
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up after {seconds:g}s waiting for {what}"
        time.sleep(interval)


def answers(url: str, proc: subprocess.Popen[Any] | None = None) -> bool:
    """Whether a GET of ``url`` answers 200 now; fails the test if ``proc`` (the server) has exited."""
    if proc is not None:
        assert proc.poll() is None, f"the server behind {url} exited with {proc.returncode}"
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_serving(url: str, what: str, proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait (up to 30 s) until a GET of ``url`` answers 200, e.g. a freshly started server's /healthz."""
    wait_for(lambda: answers(url, proc), what, seconds=30, interval=0.1)


def backend_url(request: pytest.FixtureRequest, sqlite_file: Path, backend: str | None = None) -> str:
    """A fresh log's URL on ``backend`` (default: the fixture's param), "sqlite" or "postgresql".

    SQLite: a file at ``sqlite_file``; PostgreSQL: a new database from the ``pg_url`` fixture.
    """
    if (backend or request.param) == "sqlite":
        return f"sqlite:///{sqlite_file}"
    url: str = request.getfixturevalue("pg_url")
    return url


def backend_store(request: pytest.FixtureRequest, sqlite_file: Path) -> Store:
    """A fresh store on the backend the fixture's param names (see :func:`backend_url`); the caller closes it."""
    return open_store(backend_url(request, sqlite_file))


def present(found: StoredEntry | None) -> StoredEntry:
    """What a read answered, when the test knows the entry is there (fails the test if it is not)."""
    assert found is not None, "no entry with that id"
    return found


def as_kind(kind: type[E], entry: Entry) -> E:
    """``entry``, which the test knows is of ``kind``, typed as such (fails the test if it is not)."""
    assert isinstance(entry, kind), entry
    return entry


def of_kind(kind: type[E], stored: Iterable[StoredEntry]) -> list[E]:
    """The entries of ``kind`` among stored entries (a page, a query's answer), in order."""
    return [s.entry for s in stored if isinstance(s.entry, kind)]


def inference(entry: Entry) -> InferenceRecord:
    """``entry`` typed as the inference record the test knows it is."""
    return as_kind(InferenceRecord, entry)


def inferences(stored: Iterable[StoredEntry]) -> list[InferenceRecord]:
    """The inference records among stored entries, in order."""
    return of_kind(InferenceRecord, stored)


def in_process_client(app: Any, headers: dict[str, str]) -> httpx.Client:
    """A client that calls ``app`` in this process, for the SDK's ``_http`` slot (an ``httpx.Client``).

    Starlette's ``TestClient`` is built on ``httpx2`` when that is installed (``openai`` brings it) and
    on ``httpx`` otherwise; either way it has the ``httpx.Client`` methods the SDK calls, which is all
    the cast claims.
    """
    from typing import cast

    from fastapi.testclient import TestClient

    return cast(httpx.Client, TestClient(app, headers=headers))


@contextlib.contextmanager
def system_chromium(needed_by: str) -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (which never downloads a browser here); a missing
    Chromium fails ``needed_by``'s tests, it never skips them.

    Use it from a module-scoped fixture, not a session one: while it is open Playwright's sync API keeps
    an event loop running in the main thread, and a later test calling ``asyncio.run`` must not find one.
    """
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(f"{needed_by} needs Chromium: apt-get install -y chromium", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
