"""The monitoring page in real headless Chromium: charts drawn from the engine with the API's numbers,
a drift planted in one feature flagged on that feature alone, and the alert it provoked."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

import inferlog
from inferlog.apikeys import create_key
from inferlog.keystore.protection import load_protection
from inferlog.monitor.engine import Monitor
from inferlog.monitor.scheduler import make_alerter
from inferlog.server import create_app
from inferlog.store.sqlite import SQLiteStore
from tests.server.console.conftest import LiveServer, browser_sign_in

SYSTEM = "credit"
NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
BASELINE = (NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=2))
RECENT = NOW - dt.timedelta(hours=6)
POLICY = f"""
[monitoring.references.baseline]
system = "{SYSTEM}"
since = {BASELINE[0].strftime("%Y-%m-%dT%H:%M:%SZ")}
until = {BASELINE[1].strftime("%Y-%m-%dT%H:%M:%SZ")}

[[monitoring.alerts]]
name = "income drift"
metric = "psi:income"
system = "{SYSTEM}"
reference = "baseline"
above = 0.2
window = "12h"
min_volume = 20
"""


class Drifted:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'monitor.db'}"
        rng = random.Random(11)
        with inferlog.open(self.url, system=SYSTEM, spool_dir=tmp_path / "spool") as log:
            model = inferlog.Model("scorer", "1.0.0")
            for i in range(240):  # the baseline day: income ~ 50k, age ~ 40
                ts = BASELINE[0] + dt.timedelta(minutes=6 * i)
                log.record(model=model, input={"income": rng.gauss(50_000, 5_000), "age": rng.gauss(40, 5)},
                           output={"score": rng.random()}, latency_ms=10 + rng.random() * 5, ts=ts,
                           status="error" if i % 20 == 0 else "ok")  # fmt: skip
            for i in range(120):  # the last six hours: income shifted up by half, age as before
                ts = RECENT + dt.timedelta(minutes=3 * i)
                log.record(model=model, input={"income": rng.gauss(75_000, 5_000), "age": rng.gauss(40, 5)},
                           output={"score": rng.random()}, latency_ms=10 + rng.random() * 5, ts=ts)  # fmt: skip
        (tmp_path / "policy.toml").write_text(POLICY)
        self.protection = load_protection(tmp_path / "policy.toml")
        self.store = SQLiteStore(self.url)
        self.reader = create_key(self.store, "reader", [SYSTEM], "analyst")[0]


@pytest.fixture
def drifted(tmp_path: Path) -> Iterator[Drifted]:
    made = Drifted(tmp_path)
    yield made
    made.store.close()


def test_charts_show_the_apis_numbers_and_the_provoked_alert(browser: Browser, drifted: Drifted) -> None:
    """The volume chart draws, its table holds exactly GET /v1/monitor/series's numbers, the drift
    table flags income (and not age), and the alert the planted drift provoked is shown."""
    policy = drifted.protection.policy
    monitor = Monitor(drifted.store, policy.monitoring, privacy=policy, keyring=drifted.protection.keyring)
    monitor.catch_up()
    fired = make_alerter(drifted.store, policy.monitoring, monitor).run_once(NOW)
    assert [t.rule.name for t in fired] == ["income drift"]
    app = create_app(drifted.store, protection=drifted.protection, monitor_every=0)
    since, until = (NOW - dt.timedelta(days=4)).isoformat(), (NOW + dt.timedelta(hours=1)).isoformat()
    with LiveServer(app) as live:
        page: Page = browser.new_page(base_url=live.url)
        browser_sign_in(page, drifted.reader)
        query = {
            "system": SYSTEM,
            "model": "scorer",
            "version": "1.0.0",
            "since": since,
            "until": until,
            "bucket": "hour",
        }
        page.goto(f"/monitor?{urlencode(query)}")
        expect(page.locator("#chart-volume")).to_have_attribute("data-drawn", "1")
        expect(page.locator("#chart-volume canvas")).to_have_count(1)
        cells = page.locator("#table-volume tbody tr")
        shown = {
            (row.locator("th").text_content() or ""): float(
                row.locator("td").first.get_attribute("data-value") or "nan"
            )
            for row in cells.all()
        }
        api = httpx.get(
            f"{live.url}/v1/monitor/series",
            params={
                "system": SYSTEM,
                "model": "scorer",
                "version": "1.0.0",
                "metric": "volume",
                "bucket": "hour",
                "since": since,
                "until": until,
            },
            headers={"Authorization": f"Bearer {drifted.reader}"},
        ).json()
        expected = {
            dt.datetime.fromisoformat(p["t"]).strftime("%Y-%m-%d %H:%M"): p["value"]
            for p in api["points"]
            if p["value"] is not None
        }
        assert shown == expected
        assert sum(shown.values()) == 360
        expect(page.locator("#drift-table tr.drifted th")).to_have_text(["income"])
        expect(page.locator("#firing")).to_contain_text("income drift")
        expect(page.locator("#firing")).to_contain_text("psi:income")
        page.close()
