"""The console in real headless Chromium: sign in, filter, open a record and see its proof checked in
the page (and a tampered proof fail), keyboard paging, roles, sign out; each view leaves its access entry."""

from __future__ import annotations

import base64
import json
import re

from playwright.sync_api import Page, Route, expect

from inferlog.record.model import AccessEntry
from inferlog.store.base import Query
from tests.server.console.conftest import SYSTEM, Seeded, browser_sign_in


def _reads(seeded: Seeded) -> list[AccessEntry]:
    return [
        e.entry
        for e in seeded.store.query(Query(kind="access", limit=1000)).entries
        if isinstance(e.entry, AccessEntry)
    ]


def test_sign_in_filter_open_verify_sign_out(page: Page, seeded: Seeded) -> None:
    """A reader signs in, filters errors of version 1.1.0 with a purpose, opens one, sees its inclusion
    proof and checkpoint signature verified by the page, and signs out; both reads are on record."""
    browser_sign_in(page, seeded.keys["reader"])
    expect(page.locator("#count-inferences")).to_have_text("60")  # the reader sees credit only
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Records").click()
    page.get_by_label("Version").fill("1.1.0")
    page.get_by_label("Status").select_option("error")
    page.get_by_label("Purpose").fill("error review")
    page.get_by_role("button", name="Show records").click()
    rows = page.locator("#records-table tbody tr")
    expect(rows).to_have_count(len(seeded.errors))
    expect(page).to_have_url(re.compile(r".*status=error.*"))  # htmx pushed the filtered URL
    for badge in rows.locator(".badge").all_inner_texts():
        assert badge == "error"
    rows.first.locator("a").click()
    verdict = page.locator("#proof-verdict")
    expect(verdict).to_have_attribute("data-verdict", "ok", timeout=15_000)
    expect(verdict).to_contain_text("Verified")
    expect(verdict).to_contain_text("console.test/log")
    expect(page.locator("#proof-checks li.ok")).to_have_count(4)
    record_id = page.locator("#record-id").inner_text()
    assert record_id == seeded.errors[-1]  # newest first
    expect(page.locator("#summary")).to_contain_text("ValueError: bad income")
    reads = [(a.action, a.purpose, a.count) for a in _reads(seeded)]
    assert reads == [("query", "error review", len(seeded.errors)), ("get", "error review", 1)]
    page.locator("#signout").click()
    page.wait_for_url(re.compile(r".*/signin.*"))
    page.goto("/records")
    assert "/signin" in page.url


def test_a_tampered_proof_is_shown_failing(page: Page, seeded: Seeded) -> None:
    """When one path hash (or the signature) is altered on the way, the page says FAILED, not verified."""
    browser_sign_in(page, seeded.keys["reader"])

    def flip_path(route: Route) -> None:
        answer = route.fetch()
        proof = answer.json()
        first = bytearray(base64.b64decode(proof["proof"][0]))
        first[0] ^= 1
        proof["proof"][0] = base64.b64encode(bytes(first)).decode()
        route.fulfill(response=answer, body=json.dumps(proof))

    page.route("**/proof.json", flip_path)
    page.goto(f"/records/{seeded.ids[7]}?purpose=tamper+test")
    verdict = page.locator("#proof-verdict")
    expect(verdict).to_have_attribute("data-verdict", "bad", timeout=15_000)
    expect(verdict).to_contain_text("not to the checkpoint's root")
    page.unroute("**/proof.json")

    def forge_signature(route: Route) -> None:
        answer = route.fetch()
        proof = answer.json()
        text, signatures = proof["checkpoint"].split("\n\n")
        name, blob = signatures.strip().split(" ")[1:]
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        proof["checkpoint"] = f"{text}\n\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
        route.fulfill(response=answer, body=json.dumps(proof))

    page.route("**/proof.json", forge_signature)
    page.reload()
    expect(verdict).to_have_attribute("data-verdict", "bad", timeout=15_000)
    expect(verdict).to_contain_text("does not verify")
    page.unroute("**/proof.json")
    page.reload()
    expect(verdict).to_have_attribute("data-verdict", "ok", timeout=15_000)
    page.get_by_label(re.compile("Log verifier key")).fill("")
    page.get_by_role("button", name="Check again").click()
    expect(verdict).to_have_attribute("data-verdict", "unsigned")


def test_keyboard_paging_and_opening(page: Page, seeded: Seeded) -> None:
    """j/k move the selection, n goes to the next (older) page, p back, Enter opens the selected record."""
    browser_sign_in(page, seeded.keys["reader"])
    page.goto("/records?purpose=keyboard&limit=25")
    first_page = page.locator("#records-table tbody tr a").all_inner_texts()
    page.locator("body").press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    expect(page.locator("#records-table tr.selected")).to_have_count(1)
    expect(page.locator("#records-table tbody tr").nth(1)).to_have_class(re.compile("selected"))
    page.keyboard.press("Escape")
    page.locator("main").focus()
    page.keyboard.press("n")
    page.wait_for_url(re.compile(r".*cursor=.*"))
    second_page = page.locator("#records-table tbody tr a").all_inner_texts()
    assert int(second_page[0]) == int(first_page[-1]) - 1
    page.locator("main").focus()
    page.keyboard.press("p")
    page.wait_for_url(re.compile(r".*back=.*"))
    assert page.locator("#records-table tbody tr a").all_inner_texts() == first_page
    page.locator("main").focus()
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/records/[0-9a-f-]{36}\?.*"))
    expect(page.locator("#record-purpose")).to_have_text("keyboard")


def test_a_reader_cannot_reach_admin_pages(page: Page, seeded: Seeded) -> None:
    """No Keys or Retention link for a reader, and typing their addresses gives a 403 page."""
    browser_sign_in(page, seeded.keys["reader"])
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Keys")).to_have_count(0)
    expect(nav.get_by_role("link", name="Retention")).to_have_count(0)
    for path in ("/keys", "/retention"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 403
        expect(page.locator("#error-message")).to_contain_text("reader key cannot do this")


def test_an_auditor_sees_who_read_a_record(page: Page, seeded: Seeded) -> None:
    """After a reader's view, the auditor's record page lists that read with its purpose (and its own)."""
    browser_sign_in(page, seeded.keys["reader"])
    page.goto(f"/records/{seeded.overridden}")
    page.get_by_label("Purpose").fill("customer complaint")
    page.get_by_role("button", name="Open").click()
    expect(page.locator("#feedback")).to_contain_text("reviewer-7")
    page.context.clear_cookies()
    browser_sign_in(page, seeded.keys["auditor"])
    page.goto(f"/records/{seeded.overridden}?purpose=quarterly+audit")
    reads = page.locator("#reads tbody tr")
    expect(reads).to_have_count(2)
    expect(page.locator("#reads")).to_contain_text("customer complaint")
    expect(page.locator("#reads")).to_contain_text("quarterly audit")
    actions = [(a.purpose, a.system) for a in _reads(seeded)]
    assert actions == [("customer complaint", SYSTEM), ("quarterly audit", SYSTEM)]
