"""Screenshots of the console's main pages on the demo's data, written to docs/img/console-*.png.

    .venv/bin/python scripts/screenshots.py            # rewrite the images docs/console.md shows

The demo (``run_demo``) fills a log in a temporary folder; the server runs with the demo's monitoring
policy, a signing key (so record pages show a verified proof) and the alert rules evaluated once;
headless system Chromium (Playwright, never a downloaded browser) signs in with an auditor key.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, ViewportSize, sync_playwright

from inferlog.apikeys import create_key
from inferlog.demo import demo_policy, run_demo
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer
from inferlog.keystore.protection import load_protection
from inferlog.monitor.engine import Monitor
from inferlog.monitor.scheduler import make_alerter
from inferlog.server import create_app
from inferlog.server.routes.monitor import install_monitor
from inferlog.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
PORT = 8797
SIZE: ViewportSize = {"width": 1280, "height": 860}


def _wait(url: str) -> None:
    for _ in range(200):
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the console did not come up at {url}")


def _shoot(page: Page, path: str, name: str, wait_for: str | None = None, *, full: bool = False) -> None:
    answer = page.goto(path)
    if answer is None or answer.status != 200:
        print(f"skipped docs/img/console-{name}.png: {path} answered {answer.status if answer else None}")
        return
    if wait_for:
        page.wait_for_selector(wait_for, timeout=30_000)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"console-{name}.png"), full_page=full)
    print(f"wrote docs/img/console-{name}.png")


def main() -> None:
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("needs Chromium: apt-get install -y chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferlog-shots-") as scratch:
        tmp = Path(scratch)
        url = f"sqlite:///{tmp / 'demo.db'}"
        summary = run_demo(url, n=600, spool_dir=tmp / "spool")
        (tmp / "policy.toml").write_text(demo_policy(summary))
        store = SQLiteStore(url)
        key, _ = create_key(store, "auditor", ["*"], "auditor")
        signer = init_signer(tmp / "signer.key", origin="demo.example/log")
        checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, tmp / "signer.key"))
        checkpointer.checkpoint()
        protection = load_protection(tmp / "policy.toml")
        rules = protection.policy.monitoring
        monitor = Monitor(store, rules, privacy=protection.policy, keyring=protection.keyring)
        monitor.catch_up()
        make_alerter(store, rules, monitor, webhooks=False).run_once()  # the demo's drift alert fires
        app = create_app(store, checkpointer=checkpointer, protection=protection, metric_source=monitor)
        install_monitor(app, monitor)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning"))
        thread = threading.Thread(target=server.run, name="screenshots-server", daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{PORT}"
        try:
            _wait(f"{base}/healthz")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=executable,
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(base_url=base, viewport=SIZE, color_scheme="light")
                page.goto("/signin")
                page.get_by_label("API key").fill(key)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{base}/")
                _shoot(page, "/", "overview")
                _shoot(page, "/records?purpose=screenshots+for+the+docs&status=error&limit=25", "records")
                record = summary.override_id or summary.example_id
                _shoot(
                    page, f"/records/{record}?purpose=screenshots+for+the+docs", "record", "[data-verdict=ok]"
                )
                _shoot(
                    page,
                    "/monitor?system=breast-cancer-screening&model=tumor-classifier&version=1.1.0",
                    "monitor",
                    "figure[data-drawn]",
                    full=True,
                )
                _shoot(page, "/integrity", "integrity")
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            store.close()


if __name__ == "__main__":
    main()
