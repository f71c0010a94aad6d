"""The pack's report.html in a real browser: it shows the numbers and the verification, and calls nowhere.

The browser is the system's Chromium (Debian's `chromium` package), driven by Playwright; the test
never downloads a browser and fails, saying how to install one, when there is none.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Request, Route

from inferlog.evidence import layout, report
from tests.helpers import system_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system Chromium."""
    with system_chromium("the evidence report's test") as launched:
        yield launched


@pytest.fixture
def unpacked(pack: Path, tmp_path: Path) -> Path:
    with zipfile.ZipFile(pack) as zipped:
        zipped.extractall(tmp_path / "pack")
    return tmp_path / "pack"


def test_the_report_shows_counts_and_verification_offline(browser: Browser, unpacked: Path) -> None:
    """Opened from the file, it shows the pack's counts, error rate and verification status, draws two
    charts, and makes no request beyond its own file."""
    summary: dict[str, Any] = json.loads((unpacked / layout.SUMMARY).read_text())
    page_url = (unpacked / layout.REPORT).as_uri()
    requests: list[str] = []
    context = browser.new_context()

    def block(route: Route, request: Request) -> None:
        requests.append(request.url)
        if request.url == page_url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", block)
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_url)
    page.wait_for_load_state("networkidle")
    inferences = summary["inferences"]
    assert page.inner_text("#count-inferences") == str(inferences["total"])
    assert page.inner_text("#count-errors") == str(inferences["error"])
    assert page.inner_text("#count-erased") == str(inferences["erased"])
    assert page.inner_text("#count-overrides") == str(summary["feedback"]["overrides"])
    assert page.inner_text("#count-access") == str(summary["access"]["total"])
    assert page.inner_text("#count-error-rate") == f"{inferences['error_rate']:.2%}"
    status = page.inner_text("#verification-status")
    assert status.startswith("Verified when built:")
    assert page.inner_text("#verified-entries") == str(summary["entries"]["total"])
    assert page.inner_text("#checkpoint-size") == str(summary["checkpoint"]["size"])
    assert page.locator("#chart-daily rect").count() == 2 * len(inferences["by_day"])
    assert page.locator("#chart-models rect").count() == 2 * len(summary["models"])
    assert "scorer" in page.inner_text("body")
    assert set(requests) == {page_url}, f"the report asked for {set(requests) - {page_url}}"
    context.close()


def test_what_writers_chose_is_escaped(unpacked: Path) -> None:
    """A system name, actor or detail holding markup is shown as text, never run or loaded."""
    summary: dict[str, Any] = json.loads((unpacked / layout.SUMMARY).read_text())
    evil = '<script>alert(1)</script><img src="https://example.org/x.png">'
    summary["selection"]["system"] = evil
    summary["access"]["listed"] = [{**summary["access"]["listed"][0], "actor": evil}]
    summary["admin"]["entries"][0]["details"] = {"note": evil}
    html = report.render(
        summary,
        json.loads((unpacked / layout.MODELS).read_text()),
        json.loads((unpacked / layout.POLICY).read_text()),
    )
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "default-src 'none'" in html  # and the page itself forbids every fetch
