"""``POST /v1/ingest/kserve``: the sink for KServe's InferenceLogger (CloudEvents, binary or structured).

The logger never retries, so each half is written to a small SQLite file owned by this sink before
the 202 goes out. When both halves of an inference (same ``ce-id``) are there they become one record;
a half left alone longer than the timeout is recorded on its own (``attributes.kserve_half``).

Settings live on ``app.state``: ``kserve_pending_path`` (default beside the SQLite store, else a temp
dir) and ``kserve_timeout`` (seconds, default 60).
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inferlog.errors import UsageError
from inferlog.ingest import kserve
from inferlog.ingest.service import Ingestor
from inferlog.server.body import read_body
from inferlog.server.deps import State, WhoFromUrl

router = APIRouter(prefix="/v1", tags=["ingest"])

DEFAULT_TIMEOUT = 60.0


class PendingHalves:
    """Halves waiting for their partner, kept durably in SQLite; joins and appends through the Ingestor."""

    def __init__(self, path: str | Path, ingestor: Ingestor, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = str(path)
        self.ingestor = ingestor
        self.timeout = timeout
        self.lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS pending (rid TEXT, half TEXT, system TEXT, event BLOB,"
            " received REAL, PRIMARY KEY (rid, half))"
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread that records halves left alone too long."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inferlog-kserve-sweep", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(min(5.0, max(0.5, self.timeout / 4))):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - a sweep that fails is retried on the next tick
                time.sleep(1.0)

    def close(self) -> None:
        self._stop.set()
        with self.lock:
            self.db.close()

    def add(self, event: kserve.Event, system: str) -> str:
        """Keep one half (durably), then append the joined record if its partner is there."""
        rid = kserve.record_id(event.source, event.id)
        with self.lock:
            if self.ingestor.store.get(rid) is not None:  # a redelivery of something already recorded
                self.db.execute("DELETE FROM pending WHERE rid = ?", (rid,))
                return "duplicate"
            self.db.execute(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?)",
                (rid, event.half, system, kserve.to_json(event), time.time()),
            )
            rows = dict(self.db.execute("SELECT half, event FROM pending WHERE rid = ?", (rid,)).fetchall())
            if "request" in rows and "response" in rows:
                record = kserve.join(
                    kserve.from_json(rows["request"]), kserve.from_json(rows["response"]), system=system
                )
                self.ingestor.append([record])
                self.db.execute("DELETE FROM pending WHERE rid = ?", (rid,))
                return "joined"
        return "pending"

    def sweep(self, now: float | None = None) -> int:
        """Record every half older than the timeout on its own; returns how many."""
        cutoff = (time.time() if now is None else now) - self.timeout
        done = 0
        with self.lock:
            rows = self.db.execute(
                "SELECT rid, half, system, event FROM pending WHERE received <= ?", (cutoff,)
            ).fetchall()
            for rid, half, system, data in rows:
                event = kserve.from_json(data)
                if self.ingestor.store.get(rid) is None:
                    request, response = (event, None) if half == "request" else (None, event)
                    self.ingestor.append([kserve.join(request, response, system=system)])
                    done += 1
                self.db.execute("DELETE FROM pending WHERE rid = ? AND half = ?", (rid, half))
        return done


_create_lock = threading.Lock()


def pending_of(request: Request) -> PendingHalves:
    """The app's pending-halves keeper, made (and its sweeper started) on first use."""
    app_state = request.app.state
    with _create_lock:
        found: PendingHalves | None = getattr(app_state, "kserve_pending", None)
        if found is None:
            server = app_state.inferlog
            path = getattr(app_state, "kserve_pending_path", None)
            if path is None:
                store_path = getattr(server.store, "path", None)
                path = (
                    f"{store_path}-kserve-pending.db"
                    if store_path is not None
                    else Path(tempfile.mkdtemp(prefix="inferlog-kserve-")) / "pending.db"
                )
            timeout = float(getattr(app_state, "kserve_timeout", DEFAULT_TIMEOUT))
            found = PendingHalves(path, server.ingestor, timeout)
            found.start()
            app_state.kserve_pending = found
    return found


@router.post(
    "/ingest/kserve",
    summary="KServe InferenceLogger sink (CloudEvents binary or structured); joins request and response",
    status_code=202,
    responses={202: {"description": "Kept durably"}, 422: {"description": "Not a KServe inference event"}},
)
async def ingest_kserve(
    request: Request, state: State, who: WhoFromUrl, system: str | None = None
) -> JSONResponse:
    who.require("ingest")
    body = await read_body(request, state.max_body_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("application/cloudevents+json"):
        event = kserve.parse_structured(body)
    else:
        event = kserve.parse_binary(dict(request.headers), body)
    if system is None:
        if len(who.systems) != 1 or who.systems[0] == "*":
            raise UsageError("name the system: add ?system=... to the logger url")
        system = who.systems[0]
    who.require_system(system)
    keeper = pending_of(request)
    status = await run_in_threadpool(_add_and_sweep, keeper, event, system)
    body_out: dict[str, Any] = {"id": kserve.record_id(event.source, event.id), "status": status}
    return JSONResponse(body_out, status_code=202)


def _add_and_sweep(keeper: PendingHalves, event: kserve.Event, system: str) -> str:
    status = keeper.add(event, system)
    keeper.sweep()
    return status
