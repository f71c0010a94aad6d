"""``/v1/monitor/*`` over HTTP: roles and systems as on the other read routes, numbers as the library's, clear 4xx."""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inferlog.monitor.engine import Monitor
from inferlog.monitor.source import Scope
from inferlog.record import Model
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record, prepare
from tests.server.conftest import Server, _serve

HOUR = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)  # records end here
START = HOUR - dt.timedelta(hours=2)
MODEL = Model(name="scorer", version="2")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Server]:
    """The API over SQLite with two hours of credit records (income shifted in the second) and one fraud record."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}")
    rng = random.Random(4)
    records = [
        make_record(
            system="credit",
            model=MODEL,
            ts=START + dt.timedelta(seconds=10 * i),
            input={"income": rng.gauss(50 if i < 360 else 80, 10), "job": rng.choice("ab")},
            output={"prediction": i % 2},
            latency_ms=5.0,
            status="error" if i % 10 == 0 else "ok",
        )
        for i in range(720)
    ]
    records.append(make_record(system="fraud", model=MODEL, ts=HOUR - dt.timedelta(minutes=5)))
    store.append(prepare(*records))
    yield from _serve(store, tmp_path)


def test_systems_lists_the_scopes_a_key_covers(api: Server) -> None:
    """An auditor sees both systems; a credit reader only credit; an ingest key nothing (403)."""
    everything = api.client.get("/v1/monitor/systems", headers=api.as_("auditor"))
    assert everything.status_code == 200, everything.text
    assert [(s["system"], s["volume"]) for s in everything.json()["scopes"]] == [
        ("credit", 720),
        ("fraud", 1),
    ]
    credit = api.client.get("/v1/monitor/systems", headers=api.as_("reader")).json()["scopes"]
    assert [s["system"] for s in credit] == ["credit"]
    assert credit[0]["error_rate"] == pytest.approx(0.1)
    assert api.client.get("/v1/monitor/systems", headers=api.as_("ingest")).status_code == 403


def test_series_and_metrics_answer_what_the_library_answers(api: Server) -> None:
    """A volume series and the window's metrics equal the Monitor's own; no access entry is written."""
    params = {
        "system": "credit",
        "metric": "volume",
        "bucket": "hour",
        "since": START.isoformat(),
        "until": HOUR.isoformat(),
    }
    got = api.client.get("/v1/monitor/series", params=params, headers=api.as_("reader"))
    assert got.status_code == 200, got.text
    points = got.json()["points"]
    assert sum(p["value"] for p in points) == 720
    monitor = Monitor(api.store)
    expected = monitor.series("volume", Scope("credit"), "hour", START, HOUR)
    assert [p["value"] for p in points] == [v for _, v in expected]
    metrics = api.client.get(
        "/v1/monitor/metrics",
        params={"system": "credit", "model": "scorer", "since": "4h"},
        headers=api.as_("reader"),
    ).json()["metrics"]
    assert metrics["volume"] == 720
    assert metrics["error_rate"] == pytest.approx(0.1)
    assert metrics["latency_p50"] == 5.0
    assert metrics["accuracy"] is None
    assert api.store.query(Query(kind="access")).entries == []


def test_drift_flags_the_shifted_feature_against_a_period_and_an_upload(api: Server) -> None:
    """Drift of the second hour against the first, and against an uploaded Parquet reference, flags income."""
    first = f"{START.isoformat()}/{(START + dt.timedelta(hours=1)).isoformat()}"
    second = {"since": (HOUR - dt.timedelta(hours=1)).isoformat(), "until": HOUR.isoformat()}
    # An explicit window, not "1h" ago: HOUR is taken at import, and the clock may pass an hour since.
    params = {"system": "credit", "reference": first, **second}
    report = api.client.get("/v1/monitor/drift", params=params, headers=api.as_("reader"))
    assert report.status_code == 200, report.text
    assert report.json()["drifted"] == ["income"]
    rng = random.Random(9)
    table = pa.table(
        {"income": [rng.gauss(50, 10) for _ in range(500)], "job": [rng.choice("ab") for _ in range(500)]}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    upload = {"name": "baseline", "format": "parquet", "system": "credit"}
    denied = api.client.post(
        "/v1/monitor/references", params=upload, content=buffer.getvalue(), headers=api.as_("reader")
    )
    assert denied.status_code == 403
    made = api.client.post(
        "/v1/monitor/references", params=upload, content=buffer.getvalue(), headers=api.as_("admin")
    )
    assert made.status_code == 201, made.text
    assert made.json()["rows"] == 500
    listed = api.client.get("/v1/monitor/references", headers=api.as_("reader")).json()["references"]
    assert [r["name"] for r in listed] == ["baseline"]
    against = api.client.get(
        "/v1/monitor/drift",
        params={"system": "credit", "reference": "baseline", **second},
        headers=api.as_("reader"),
    ).json()
    assert against["drifted"] == ["income"]
    series = api.client.get(
        "/v1/monitor/series",
        params={
            "system": "credit",
            "metric": "psi:income",
            "reference": "baseline",
            "bucket": "hour",
            "since": START.isoformat(),
            "until": HOUR.isoformat(),
        },
        headers=api.as_("reader"),
    ).json()["points"]
    assert [p["t"] for p in series] == [START.isoformat(), (START + dt.timedelta(hours=1)).isoformat()]
    assert series[0]["value"] < 0.1 < 0.2 < series[1]["value"]


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/monitor/series", {"system": "credit", "metric": "bogus"}, 422, "metric"),
        ("/v1/monitor/series", {"system": "credit", "metric": "volume", "bucket": "week"}, 422, "bucket"),
        ("/v1/monitor/series", {"system": "credit", "metric": "psi:income"}, 422, "reference"),
        ("/v1/monitor/series", {"system": "credit", "metric": "volume", "since": "yesterday"}, 422, "since"),
        (
            "/v1/monitor/series",
            {"system": "credit", "metric": "volume", "since": "1h", "until": "2h"},
            422,
            "since",
        ),
        ("/v1/monitor/metrics", {"system": "credit", "version": "2"}, 422, "version"),
        ("/v1/monitor/drift", {"system": "credit", "reference": "nothing-kept"}, 404, "nothing-kept"),
        ("/v1/monitor/drift", {"system": "fraud", "reference": "x"}, 403, "fraud"),
        ("/v1/monitor/series", {"metric": "volume"}, 422, "system"),
    ],
)
def test_bad_parameters_are_clear_4xx(
    api: Server, path: str, params: dict[str, str], status: int, field: str
) -> None:
    """Each malformed or forbidden request answers its 4xx with a message naming what was wrong."""
    got = api.client.get(path, params=params, headers=api.as_("reader"))
    assert got.status_code == status, got.text
    assert field in got.text


def test_a_bad_upload_is_refused(api: Server) -> None:
    """An upload with an unknown format, no body, or bytes that are no Parquet is a 422 naming the problem."""
    for params, body, word in (
        ({"name": "r", "format": "xlsx"}, b"a,b\n1,2\n", "format"),
        ({"name": "r", "format": "csv"}, b"", "body"),
        ({"name": "r", "format": "parquet"}, b"not parquet", "Parquet"),
        ({"name": "no spaces", "format": "csv"}, b"a\n1\n", "name"),
    ):
        got = api.client.post("/v1/monitor/references", params=params, content=body, headers=api.as_("admin"))
        assert got.status_code == 422, got.text
        assert word in got.text


def test_a_data_set_that_is_not_what_it_claims_is_a_422(api: Server) -> None:
    """Bodies that are not the format they claim, or whose column names are not UTF-8: 422, nothing kept."""
    bad = {
        "parquet": b"income,job\n1,a\n",  # CSV claiming to be Parquet
        "csv": "inc\udcffome\n1\n".encode("utf-8", "surrogateescape"),  # a column name that is not UTF-8
    }
    for fmt, body in bad.items():
        made = api.client.post(
            "/v1/monitor/references",
            params={"name": f"bad-{fmt}", "format": fmt},
            content=body,
            headers=api.as_("admin"),
        )
        assert made.status_code == 422, made.text
        assert made.json()["field"] == "file"
    listed = api.client.get("/v1/monitor/references", headers=api.as_("reader")).json()["references"]
    assert listed == []
