"""The console over plain HTTP (TestClient): sign-in, cookies, form tokens, roles, audited reads, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient

import inferlog
from inferlog.apikeys import revoke_key
from inferlog.monitor.policy import AlertRule, MonitoringPolicy
from inferlog.monitor.scheduler import make_alerter
from inferlog.record.model import AccessEntry
from inferlog.server.auth import parse_key
from inferlog.server.console import ASSETS
from inferlog.store.base import Query
from tests.monitor.alerting import StoreSource
from tests.server.console.conftest import SYSTEM, T0, Seeded, csrf_of, make_app, sign_in


def _access(seeded: Seeded) -> list[AccessEntry]:
    entries = seeded.store.query(Query(kind="access", limit=1000)).entries
    return [e.entry for e in entries if isinstance(e.entry, AccessEntry)]


def test_a_page_without_a_session_sends_to_sign_in(client: TestClient) -> None:
    """Without a session, a page redirects to /signin, remembering where it was going."""
    answer = client.get("/records?status=error", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Frecords%3Fstatus%3Derror"


def test_the_session_cookie_is_httponly_and_strict(client: TestClient, seeded: Seeded) -> None:
    """Signing in sets an HttpOnly, SameSite=Strict session cookie (not Secure over plain http)."""
    form = client.get("/signin")
    answer = client.post(
        "/signin", data={"csrf": csrf_of(form.text), "key": seeded.keys["reader"]}, follow_redirects=False
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("inferlog_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "secure" not in flags
    assert seeded.keys["reader"] not in cookie  # the key never comes back to the browser


def test_over_https_the_cookie_is_secure(seeded: Seeded) -> None:
    """Served over https, the session cookie carries Secure."""
    with TestClient(make_app(seeded), base_url="https://console.test") as client:
        form = client.get("/signin")
        answer = client.post(
            "/signin", data={"csrf": csrf_of(form.text), "key": seeded.keys["reader"]}, follow_redirects=False
        )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("inferlog_session="))
    assert "secure" in cookie.lower().split("; ")


def test_sign_in_without_the_form_token_is_refused(client: TestClient, seeded: Seeded) -> None:
    """A sign-in posted without (or with another) form token is a 403 page, and no session is made."""
    client.get("/signin")
    forged = client.post(
        "/signin", data={"csrf": "x" * 43, "key": seeded.keys["reader"]}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert "text/html" in forged.headers["content-type"]
    assert "inferlog_session" not in forged.headers.get("set-cookie", "")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_wrong_key_says_so_on_the_form(client: TestClient) -> None:
    """A key this server never issued gets the form again with the reason, status 401."""
    form = client.get("/signin")
    answer = client.post("/signin", data={"csrf": csrf_of(form.text), "key": "ilog_nope"})
    assert answer.status_code == 401
    assert 'id="signin-error"' in answer.text


def test_an_ingest_key_cannot_sign_in(client: TestClient, seeded: Seeded) -> None:
    """An ingest key writes and reads nothing: the console refuses it with 403."""
    form = client.get("/signin")
    answer = client.post("/signin", data={"csrf": csrf_of(form.text), "key": seeded.keys["ingest"]})
    assert answer.status_code == 403
    assert "ingest key" in answer.text


def test_an_oversized_or_mistyped_form_is_refused(client: TestClient) -> None:
    """A form over the limit is a 413 page, a form sent as JSON a 422 page, and neither signs anyone in."""
    form = client.get("/signin")
    huge = client.post(
        "/signin", data={"csrf": csrf_of(form.text), "key": "k" * (1024 * 1024)}, follow_redirects=False
    )
    assert huge.status_code == 413, huge.text[-300:]
    assert 'id="error-message"' in huge.text
    as_json = client.post("/signin", json={"csrf": csrf_of(form.text), "key": "k"}, follow_redirects=False)
    assert as_json.status_code == 422
    assert "x-www-form-urlencoded" in as_json.text
    assert client.get("/records", follow_redirects=False).status_code == 303


def test_posts_need_the_session_form_token(client: TestClient, seeded: Seeded) -> None:
    """Sign-out and "verify now" without the session's form token are refused (403); the session lives on."""
    sign_in(client, seeded.keys["auditor"])
    assert client.post("/signout", data={"csrf": "forged"}).status_code == 403
    assert client.post("/integrity/verify", data={"note": "no token"}).status_code == 403
    assert client.get("/integrity").status_code == 200  # still signed in
    token = csrf_of(client.get("/integrity").text)
    done = client.post("/integrity/verify", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303
    assert 'id="verify-verdict">Verified' in client.get("/integrity").text.replace("\n", "")


def test_sign_out_ends_the_session_on_the_server(client: TestClient, seeded: Seeded) -> None:
    """After sign-out the old cookie is worthless: replaying it leads to the sign-in page."""
    sign_in(client, seeded.keys["reader"])
    session = client.cookies.get("inferlog_session")
    assert session
    token = csrf_of(client.get("/").text)
    assert client.post("/signout", data={"csrf": token}, follow_redirects=False).status_code == 303
    client.cookies.set("inferlog_session", session)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_revoked_key_ends_its_sessions(client: TestClient, seeded: Seeded) -> None:
    """Revoking the key through the library ends a console session at its next request."""
    sign_in(client, seeded.keys["reader"])
    assert client.get("/", follow_redirects=False).status_code == 200
    kid = parse_key(seeded.keys["reader"])[0]
    revoke_key(seeded.store, kid, actor="test")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_an_idle_session_expires(client: TestClient, seeded: Seeded) -> None:
    """A session unused for more than its idle time is gone."""
    sign_in(client, seeded.keys["reader"])
    sessions = client.app.state.console_sessions  # type: ignore[attr-defined]
    sessions.expire(client.cookies["inferlog_session"], seconds_ago=31 * 60)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_roles_are_the_apis(client: TestClient, seeded: Seeded) -> None:
    """A reader cannot open keys or retention (403 pages); an admin cannot read records, as on the API."""
    sign_in(client, seeded.keys["reader"])
    for path in ("/keys", "/retention"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "reader key cannot do this" in answer.text
    assert client.get("/records?kind=access&purpose=x").status_code == 403
    assert 'href="/keys"' not in client.get("/").text
    client.cookies.clear()
    sign_in(client, seeded.keys["admin"])
    assert client.get("/keys").status_code == 200
    assert client.get("/records?purpose=x").status_code == 403


def test_a_reader_sees_only_its_systems(client: TestClient, seeded: Seeded) -> None:
    """Another system's record is a 404 page for a reader of credit, as an unknown id is."""
    sign_in(client, seeded.keys["reader"])
    assert client.get(f"/records/{seeded.fraud_id}?purpose=x").status_code == 404
    assert client.get(f"/records/{seeded.fraud_id}/proof.json").status_code == 404
    listed = client.get("/records?purpose=x&limit=100&kind=all").text
    assert seeded.fraud_id not in listed
    assert client.get("/records?system=fraud&purpose=x").status_code == 403


def test_bad_input_is_a_4xx_page(client: TestClient, seeded: Seeded) -> None:
    """Malformed filters and ids answer 4xx HTML pages naming the problem, never a 500."""
    sign_in(client, seeded.keys["reader"])
    cases = {
        "/records?purpose=x&limit=abc": 422,
        "/records?purpose=x&limit=100000": 422,
        "/records?purpose=x&since=yesterday-ish": 422,
        "/records?purpose=x&attr=no-equals-sign": 422,
        "/records?purpose=x&status=maybe": 400,
        "/records?purpose=" + "p" * 300: 422,
        "/records/not-an-id?purpose=x": 404,
        "/records/" + "a" * 80 + "?purpose=x": 422,
    }
    for path, status in cases.items():
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.text[-300:])
        assert "text/html" in answer.headers["content-type"]
        assert 'id="error-message"' in answer.text


def test_payload_pages_need_a_purpose_and_leave_an_access_entry(client: TestClient, seeded: Seeded) -> None:
    """Without a purpose nothing is read (no entry); with one, the list and the record page each append
    the same access entry as the API's reads, with the purpose given."""
    sign_in(client, seeded.keys["reader"])
    before = len(_access(seeded))
    asked = client.get(f"/records/{seeded.ids[0]}")
    assert asked.status_code == 200
    assert 'name="purpose"' in asked.text
    assert "income" not in asked.text
    assert client.get("/records").status_code == 200
    assert len(_access(seeded)) == before
    client.get("/records?purpose=monthly+review&status=error")
    client.get(f"/records/{seeded.ids[0]}?purpose=complaint+4711")
    new = _access(seeded)[before:]
    assert [(a.action, a.purpose, a.system) for a in new] == [
        ("query", "monthly review", SYSTEM),
        ("get", "complaint 4711", SYSTEM),
    ]
    assert new[0].count == len(seeded.errors)
    assert new[0].actor == new[1].actor == f"credit analyst ({parse_key(seeded.keys['reader'])[0]})"
    assert new[1].query == {"id": seeded.ids[0], "via": "console"}


def test_the_record_page_shows_the_whole_trail(client: TestClient, seeded: Seeded) -> None:
    """Input, output, model digest and lineage, feedback with the override, and (for an auditor) who read it."""
    sign_in(client, seeded.keys["reader"])
    client.get(f"/records/{seeded.overridden}?purpose=first+look")
    client.cookies.clear()
    sign_in(client, seeded.keys["auditor"])
    page = html.unescape(client.get(f"/records/{seeded.overridden}?purpose=audit").text)
    assert '"income": 1004' in page
    assert '"score": 0.067' in page
    assert "mlflow://runs/1.0.0" in page
    assert "sha256:100100" in page
    assert "manual review" in page
    assert "reviewer-7" in page
    assert f'hx-get="/records/{seeded.overridden}/reads"' in page
    reads = html.unescape(client.get(f"/records/{seeded.overridden}/reads").text).split('id="reads"')[1]
    assert "first look" in reads
    assert "audit" in reads
    assert "credit analyst" in reads
    assert (
        client.get(f"/records/{seeded.overridden}/reads", headers={"HX-Request": "true"})
        .text.lstrip()
        .startswith("<table")
    )


def test_a_reader_is_not_shown_the_read_trail(client: TestClient, seeded: Seeded) -> None:
    """Access entries are an auditor's, as on the API: the reader's record page says so instead."""
    sign_in(client, seeded.keys["reader"])
    page = client.get(f"/records/{seeded.ids[0]}?purpose=x").text
    assert 'id="reads-hidden"' in page
    assert "/reads" not in page
    assert client.get(f"/records/{seeded.ids[0]}/reads").status_code == 403


def test_records_page_through_with_links(client: TestClient, seeded: Seeded) -> None:
    """rel=next walks to older records and rel=prev back, without gaps or repeats."""
    sign_in(client, seeded.keys["reader"])
    seen: list[int] = []
    url = "/records?purpose=paging&limit=25"
    while url:
        page = client.get(url).text
        seen += [int(s) for s in re.findall(r'aria-label="record (\d+)"', page)]
        found = re.search(r'href="([^"]+)" rel="next"', page)
        url = found.group(1).replace("&amp;", "&") if found else ""
    credit = [s.seq for s in seeded.store.query(Query(system=SYSTEM, kind="inference", limit=1000)).entries]
    assert seen == sorted(credit, reverse=True)
    last = client.get(f"/records?purpose=paging&limit=25&cursor={seen[49]}").text
    back = re.search(r'href="([^"]+)" rel="prev"', last)
    assert back is not None
    newer = client.get(back.group(1).replace("&amp;", "&")).text
    assert [int(s) for s in re.findall(r'aria-label="record (\d+)"', newer)] == seen[25:50]


def test_filters_combine(client: TestClient, seeded: Seeded) -> None:
    """Model, version, status, subject, session, attribute and time filters narrow the list as the API does."""
    sign_in(client, seeded.keys["reader"])

    def seqs(qs: str) -> set[int]:
        page = client.get(f"/records?purpose=f&limit=200&{qs}").text
        return {int(s) for s in re.findall(r'aria-label="record (\d+)"', page)}

    by_id = {
        s.id: s.seq for s in seeded.store.query(Query(system=SYSTEM, kind="inference", limit=1000)).entries
    }
    assert seqs("status=error") == {by_id[i] for i in seeded.errors}
    assert seqs("version=1.0.0") == {by_id[i] for i in seeded.ids[0::2]}
    assert seqs("subject=customer-1") == {by_id[i] for n, i in enumerate(seeded.ids) if n % 6 == 1}
    assert seqs("session=session-2") == {by_id[i] for i in seeded.ids[40:]}
    assert seqs("attr=region%3Dus") == {by_id[i] for n, i in enumerate(seeded.ids) if n % 3 == 0}
    assert seqs("since=2026-11-02T09:10:00Z&until=2026-11-02T09:15:00Z") == {
        by_id[i] for i in seeded.ids[10:15]
    }


def test_markup_in_records_is_shown_as_text(client: TestClient, seeded: Seeded, tmp_path: Path) -> None:
    """Whatever a producer wrote (a script tag in an output) is escaped, and pages forbid inline script."""
    with inferlog.open(seeded.url, system=SYSTEM, spool_dir=tmp_path / "evil") as log:
        rid = log.record(model=inferlog.Model("scorer", "1.0.0"), input={"x": 1},
                         output={"note": "<script>alert(1)</script>"})  # fmt: skip
    sign_in(client, seeded.keys["reader"])
    page = client.get(f"/records/{rid}?purpose=x")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_no_auth_on_loopback_needs_no_sign_in(seeded: Seeded) -> None:
    """With auth off (loopback --no-auth), pages open directly and /signin goes home."""
    with TestClient(make_app(seeded, auth=False)) as client:
        assert client.get("/", follow_redirects=False).status_code == 200
        assert client.get("/signin", follow_redirects=False).headers["location"] == "/"
        assert client.get("/records?purpose=x").status_code == 200
        assert (
            client.post("/integrity/verify", data={"csrf": "guess"}).status_code == 403
        )  # still CSRF-checked


def test_the_overview_shows_systems_and_models(client: TestClient, seeded: Seeded) -> None:
    """Counts per system and per model version, and each version's registered digest."""
    sign_in(client, seeded.keys["auditor"])
    page = client.get("/").text
    assert 'id="count-inferences">63<' in page
    assert 'id="count-errors">6<' in page
    assert "sha256:110110" in page
    assert ">fraud<" in page


def test_assets_are_the_recorded_npm_files(client: TestClient) -> None:
    """Each vendored file is served from the package and matches the sha256 in SOURCES.json; pages load
    nothing from another host."""
    record = json.loads((ASSETS / "SOURCES.json").read_text())
    assert set(record["packages"]) == {"htmx.org", "uplot"}
    for package in record["packages"].values():
        assert package["tarball_integrity"].startswith("sha512-")
        for name, info in package["files"].items():
            served = client.get(f"/console/assets/{name}")
            assert served.status_code == 200, name
            assert hashlib.sha256(served.content).hexdigest() == info["sha256"], name
    page = client.get("/signin").text
    referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert "/console/assets/htmx.min.js" in referenced
    assert all(url.startswith(("/", "#")) and not url.startswith("//") for url in referenced), referenced


def test_assets_go_into_the_wheel() -> None:
    """The console's templates and assets sit in the package and are not git-ignored (hatch honours that)."""
    root = Path(__file__).resolve().parents[3]
    files = [*ASSETS.iterdir(), *(ASSETS.parent / "templates").iterdir()]
    assert len(files) > 15
    git = shutil.which("git")
    assert git is not None
    ignored = subprocess.run(
        [git, "check-ignore", *map(str, files)], cwd=root, capture_output=True, text=True, check=False
    )
    assert ignored.stdout == ""


def test_a_firing_alert_is_on_the_overview(client: TestClient, seeded: Seeded) -> None:
    """An alert rule that fired (an alert.fired entry in the log) is listed on the overview, with its
    number and a link to its charts, for a key covering its system."""
    rule = AlertRule(name="credit errors", metric="error_rate", system=SYSTEM,
                     window=dt.timedelta(hours=2), above=0.05)  # fmt: skip
    alerter = make_alerter(seeded.store, MonitoringPolicy(alerts=(rule,)), StoreSource(seeded.store))
    alerter.run_once(T0 + dt.timedelta(hours=1))
    sign_in(client, seeded.keys["reader"])
    page = client.get("/")
    section = page.text.split('id="overview-alerts"')[1].split("</section>")[0]
    assert "credit errors" in section
    assert '<span class="alert-value">0.1</span>' in section  # 6 errors in 60 records
    assert "/monitor?system=credit" in section


def test_sign_in_goes_back_only_to_this_server(client: TestClient, seeded: Seeded) -> None:
    """The `next` of a sign-in is followed only as a path on this server, never to another host."""
    for target, expected in [
        ("/records?status=error", "/records?status=error"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        client.cookies.clear()
        form = client.get("/signin")
        answer = client.post(
            "/signin",
            data={"csrf": csrf_of(form.text), "key": seeded.keys["reader"], "next": target},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == expected, target
