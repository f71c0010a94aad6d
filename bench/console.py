"""Benchmark 12: console page render time over a large log, ms per page (target: p95 < 300 ms).

N ~1 KB inference records of two systems over 7 UTC days (two model versions, one in 25 an error,
subjects, sessions, an attribute; feedback on every 100th) are appended to a SQLite log once, with a
signed checkpoint over all of it. Each page is then requested ``rounds`` times by a signed-in auditor
(a real session cookie and the real app, in process through the ASGI test client, so the time is the
server's: routing, store reads, the access entry a payload page appends, the template), and its
wall time recorded. Record pages open records spread over the whole log.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import load_average, machine_info, table
from fastapi.testclient import TestClient

from inferlog.apikeys import create_key
from inferlog.ingest import Ingestor
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_signer
from inferlog.monitor.engine import Monitor
from inferlog.record import Model
from inferlog.record.ids import uuid7
from inferlog.record.model import Entry, FeedbackEntry
from inferlog.server import create_app
from inferlog.server.routes.monitor import install_monitor
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from integrity import BATCH

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
SPAN = 7 * 24 * 3600
MODELS = (Model("scorer", "3"), Model("scorer", "4"))
SYSTEMS = ("credit", "fraud")
TARGET_P95_MS = 300.0


@dataclass
class ConsoleResults:
    n: int
    rounds: int
    times: dict[str, list[float]]  # page -> ms per request
    build_seconds: float | None  # None: a log built by an earlier run (--keep) was reused
    facts: dict[str, str]
    folded: int = 0  # entries the monitor folded before the pages were timed
    catch_up_seconds: float = 0.0


def _entries(n: int, start: int) -> list[Entry]:
    out: list[Entry] = []
    for k in range(start, min(start + BATCH * 10, n)):
        record = make_record(
            system=SYSTEMS[k % 5 == 4],
            model=MODELS[(k // 1000) % 2],
            ts=START + dt.timedelta(seconds=k * SPAN // max(n, 1)),
            input={f"f{i}": 0.1 * i + k * 1e-3 for i in range(30)},
            output={"probability": (k % 100) / 100},
            status="error" if k % 25 == 7 else "ok",
            subject=f"subject-{k % 5000}",
            session_id=f"session-{k // 20}",
            attributes={"endpoint": "/v1/score", "region": "eu-west-1" if k % 2 else "eu-central-1"},
            latency_ms=3.0 + k % 50,
        )
        out.append(record)
        if k % 100 == 0:
            out.append(FeedbackEntry(id=uuid7(), system=record.system, ts=record.ts, inference_id=record.id,
                                     label=k % 2, actor="lab"))  # fmt: skip
    return out


def _build(tmp: Path, n: int) -> tuple[SQLiteStore, Checkpointer]:
    store = SQLiteStore(f"sqlite:///{tmp / 'log.db'}")
    ingestor = Ingestor(store)
    for start in range(0, n, BATCH * 10):  # a slice at a time: 1 M records would not fit in memory
        entries = _entries(n, start)
        for i in range(0, len(entries), BATCH):
            ingestor.append(entries[i : i + BATCH])
    key = tmp / "signer.key"
    checkpointer = Checkpointer(
        store, CheckpointSigner.beside_key(init_signer(key, origin="bench.example/log"), key)
    )
    checkpointer.checkpoint()
    return store, checkpointer


def _sign_in(client: TestClient, key: str) -> None:
    form = client.get("/signin").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = client.post("/signin", data={"csrf": token.group(1), "key": key}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def run(tmp: Path, *, n: int, rounds: int, keep: Path | None = None) -> ConsoleResults:
    """``keep``: a folder to build the log in once and reuse on later runs (same ``n``)."""
    tmp = keep if keep is not None else tmp / "console"
    tmp.mkdir(exist_ok=keep is not None)
    started = time.perf_counter()
    reused = keep is not None and (tmp / "log.db").exists()
    if reused:
        store = SQLiteStore(f"sqlite:///{tmp / 'log.db'}")
        key_path = tmp / "signer.key"
        checkpointer = Checkpointer(store, CheckpointSigner.beside_key(load_signer(key_path), key_path))
    else:
        store, checkpointer = _build(tmp, n)
    build_seconds = time.perf_counter() - started
    key, _ = create_key(store, "auditor", ["*"], "bench auditor")
    size = store.size()
    sample = [store.scan(after=max(0, size * i // rounds - 1), limit=1)[0] for i in range(rounds)]
    ids = [s.id for s in sample if s.entry.system == "credit"] or [sample[0].id]
    errors = store.query(Query(system="credit", status="error", order="desc", limit=1)).entries[0]
    middle = size // 2
    pages: dict[str, Callable[[int], str]] = {
        "overview `/`": lambda i: "/",
        "records, newest 50": lambda i: "/records?purpose=bench",
        "records of one system (the overview's link)": lambda i: "/records?purpose=bench&system=credit",
        "records, filtered (system, model, version, status)": lambda i: (
            "/records?purpose=bench&system=credit&model=scorer&version=4&status=error"
        ),
        "records, by subject": lambda i: f"/records?purpose=bench&subject=subject-{i * 37 % 5000}",
        "records, a page deep in the log (cursor)": lambda i: (
            f"/records?purpose=bench&cursor={middle - i * 1000}"
        ),
        "one record's trail (proof, model, feedback)": lambda i: (
            f"/records/{ids[i % len(ids)]}?purpose=bench"
        ),
        "one record's read trail (loaded after its page)": lambda i: f"/records/{errors.id}/reads",
        "integrity": lambda i: "/integrity",
        "monitoring, one model version, 7 days by hour (5 charts)": lambda i: (
            f"/monitor?system=credit&model=scorer&version=4&since={START.isoformat()}"
            f"&until={(START + dt.timedelta(days=7)).isoformat()}&bucket=hour".replace("+", "%2B")
        ),
    }
    times: dict[str, list[float]] = {}
    monitor = Monitor(store)
    begun = time.perf_counter()
    folded = monitor.catch_up()  # what a running server's monitoring cadence keeps up with the log
    catch_up_seconds = time.perf_counter() - begun
    app = create_app(store, checkpointer=checkpointer, checkpoint_cadence=False, metric_source=monitor)
    install_monitor(app, monitor)
    with TestClient(app) as client:
        _sign_in(client, key)
        for name, path in pages.items():
            client.get(path(0))  # warm: the first request of a page compiles its template
            for i in range(rounds):
                begun = time.perf_counter()
                answer = client.get(path(i))
                elapsed = (time.perf_counter() - begun) * 1000
                assert answer.status_code == 200, (name, answer.status_code, answer.text[-300:])
                times.setdefault(name, []).append(elapsed)
    store.close()
    facts = machine_info(tmp)
    facts["load at end"] = load_average()
    return ConsoleResults(
        n, rounds, times, None if reused else build_seconds, facts, folded, catch_up_seconds
    )


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def section(res: ConsoleResults) -> str:
    rows = []
    for name, values in res.times.items():
        p95 = _p95(values)
        verdict = "meets" if p95 < TARGET_P95_MS else "MISSES"
        rows.append([name, f"{statistics.median(values):.1f}", f"{p95:.1f}", f"{max(values):.1f}", verdict])
    return "\n".join(
        [
            "## 12. The console: page render time",
            "",
            f"{res.n:,} ~1 KB inference records of two systems over 7 UTC days (plus feedback on every 100th) "
            "in a SQLite log with one signed checkpoint ("
            + (
                f"built in {res.build_seconds:.0f} s"
                if res.build_seconds is not None
                else "built by an earlier run"
            )
            + "). Each page is "
            f"requested {res.rounds} times by a signed-in auditor through the real app in process (routing, "
            "store reads, the access entry a payload page appends, the template); ms per request, target "
            f"p95 < {TARGET_P95_MS:.0f} ms. Record pages open records spread over the whole log. The overview "
            "and monitoring pages read the monitoring engine's rollups, which a running server keeps up "
            f"with the log; here they were first built from the whole log ({res.folded:,} entries folded in "
            f"{res.catch_up_seconds:.0f} s).",
            "",
            f"Measured {res.facts['date']} on {res.facts['CPU']} ({res.facts['cores']} cores), "
            f"{res.facts['Python']}; load average at the end {res.facts['load at end']}.",
            "",
            table(["page", "median ms", "p95 ms", "max ms", f"p95 < {TARGET_P95_MS:.0f} ms"], rows),
            "",
        ]
    )


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="build the log here once, reuse it after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="inferlog-bench-") as scratch:
        print(section(run(Path(scratch), n=args.n, rounds=args.rounds, keep=args.keep)))
