"""A console over a real SQLite log with known records, one key per role, signed checkpoints, and a
real uvicorn on a loopback port for the browser (system Chromium through Playwright)."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page

import inferlog
from inferlog.apikeys import create_key
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer
from inferlog.server import create_app
from inferlog.store import Store, open_store
from tests.helpers import backend_url, free_port, system_chromium, wait_until_serving

SYSTEM = "credit"
OTHER = "fraud"
MODELS = (("scorer", "1.0.0"), ("scorer", "1.1.0"))
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@dataclass
class Seeded:
    """What the log holds: ids by role in the story, and the keys to read it."""

    store: Store
    url: str
    keys: dict[str, str]
    checkpointer: Checkpointer
    ids: list[str] = field(default_factory=list)  # every credit inference, oldest first
    errors: list[str] = field(default_factory=list)
    overridden: str = ""
    fraud_id: str = ""


def seed(tmp_path: Path, url: str | None = None) -> Seeded:
    """60 credit inferences over two versions (every 10th an error), feedback on a few, one override,
    3 fraud inferences; two registered versions; a checkpoint over all of it (in ``url``'s log:
    a SQLite file in ``tmp_path`` by default)."""
    url = url or f"sqlite:///{tmp_path / 'console.db'}"
    ids: list[str] = []
    errors: list[str] = []
    with inferlog.open(url, system=SYSTEM, spool_dir=tmp_path / "spool") as log:
        for name, version in MODELS:
            log.register_model(name, version, digest="sha256:" + version.replace(".", "")[:3] * 21 + "a",
                               uri=f"mlflow://runs/{version}", actor="ml-ops")  # fmt: skip
        for i in range(60):
            name, version = MODELS[i % 2]
            status = "error" if i % 10 == 9 else "ok"
            rid = log.record(
                model=inferlog.Model(name, version),
                input={"income": 1000 + i, "region": "eu" if i % 3 else "us"},
                output=None if status == "error" else {"score": round(i / 60, 3)},
                status=status,  # type: ignore[arg-type]
                error=ValueError("bad income") if status == "error" else None,
                latency_ms=5.0 + i,
                subject=f"customer-{i % 6}",
                session_id=f"session-{i // 20}",
                attributes={"region": "eu" if i % 3 else "us"},
                ts=T0 + dt.timedelta(minutes=i),
            )
            ids.append(rid)
            if status == "error":
                errors.append(rid)
        overridden = ids[4]
        log.feedback(ids[2], label=1, actor="labeler")
        log.feedback(
            overridden, label=0, override={"score": 0.0}, comment="manual review", actor="reviewer-7"
        )
    with inferlog.open(url, system=OTHER, spool_dir=tmp_path / "spool2") as log:
        fraud = [
            log.record(model=inferlog.Model("flagger", "2"), input={"amount": i}, output=i > 1)
            for i in range(3)
        ]
    store = open_store(url)
    keys = {
        "reader": create_key(store, "reader", [SYSTEM], "credit analyst")[0],
        "auditor": create_key(store, "auditor", ["*"], "auditor")[0],
        "admin": create_key(store, "admin", ["*"], "ops")[0],
        "ingest": create_key(store, "ingest", [SYSTEM], "model server")[0],
    }
    signer = init_signer(tmp_path / "signer.key", origin="console.test/log")
    checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, tmp_path / "signer.key"))
    checkpointer.checkpoint()
    return Seeded(store, url, keys, checkpointer, ids, errors, overridden, fraud[0])


def make_app(seeded: Seeded, *, auth: bool = True) -> FastAPI:
    return create_app(seeded.store, auth=auth, checkpointer=seeded.checkpointer, checkpoint_cadence=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    """The seeded log on each backend: a SQLite file, and a fresh PostgreSQL database."""
    made = seed(tmp_path, backend_url(request, tmp_path / "console.db"))
    yield made
    made.store.close()


@pytest.fixture
def client(seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(make_app(seeded)) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no form token"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> None:
    """Through the form, as a person does."""
    form = client.get("/signin")
    answer = client.post(
        "/signin", data={"csrf": csrf_of(form.text), "key": key, "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


class LiveServer:
    """The app under a real uvicorn in a thread of this process, on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, name="console-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_until_serving(f"{self.url}/healthz", "the console's server to come up")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live(seeded: Seeded) -> Iterator[LiveServer]:
    with LiveServer(make_app(seeded)) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system Chromium (per module: see tests.helpers.system_chromium)."""
    with system_chromium("the console's browser tests") as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> Iterator[Page]:
    """A fresh browser context (no cookies) whose every request must go to the console's own host."""
    context = browser.new_context(base_url=live.url)
    foreign: list[str] = []
    context.on(
        "request", lambda request: None if request.url.startswith(live.url) else foreign.append(request.url)
    )
    opened = context.new_page()
    yield opened
    context.close()
    assert not foreign, f"the console asked another host for {foreign}"


def browser_sign_in(page: Page, key: str) -> None:
    page.goto("/")
    assert "/signin" in page.url
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))
