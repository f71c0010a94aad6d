"""Benchmark 3: what tamper evidence costs, and how fast `inferlog verify` checks a log.

Integrity on vs off: the same pre-built records appended through the one ingest path
(``Ingestor``: canonical JSON body, then the store's transaction) into a fresh SQLite file each
round, in batches of 1000. "On" is the product: salted commitment, leaf, leaf hash, Merkle compact
range and tiles in the same transaction. "Off" stores the same canonical body and indexed columns
with an empty leaf and no tree. Rounds alternate on/off so machine noise hits both alike.

Verify: ``inferlog.integrity.audit`` over a log of N entries (every leaf re-hashed, every payload
commitment, every indexed column against its leaf, the tree recomputed), best of a few runs.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common import fmt, table, verdict

from inferlog.ingest.service import Ingestor
from inferlog.integrity.verify import audit, default_workers
from inferlog.pipeline import Pipeline, body_of
from inferlog.record.model import Entry, InferenceRecord
from inferlog.record.prepared import Prepared
from inferlog.record.validate import check_entry
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record

BATCH = 1000
INTEGRITY_TARGET = 0.15  # at most 15 % slower
VERIFY_TARGET = 200_000  # records/s


class _NoLeafPipeline(Pipeline):
    """Canonical body only: no salt, no commitment, no leaf hash (the entry checks stay: they are not integrity)."""

    def prepare(self, entry: Entry, *, checked: bool = False) -> Prepared:
        if not checked:
            check_entry(entry)
        return Prepared(entry, body_of(entry), b"", b"", b"")


class _NoTreeStore(SQLiteStore):
    """The SQLite store without the Merkle tree update."""

    def _extend_tree(self, conn: sqlite3.Connection, old_size: int, leaf_hashes: list[bytes]) -> None:
        return None


@dataclass
class IntegrityResults:
    n: int
    on: list[float]  # records/s per round
    off: list[float]
    verify_n: int
    verify: list[float]

    @property
    def slowdown(self) -> float:
        return 1 - statistics.median(self.on) / statistics.median(self.off)


def _records(n: int) -> list[InferenceRecord]:
    return [
        make_record(
            input={f"f{i}": 0.1 * i + k * 1e-3 for i in range(30)},
            output={"probability": (k % 100) / 100},
            attributes={"endpoint": "/v1/score", "region": "eu-west-1", "tokens": k % 512},
        )
        for k in range(n)
    ]


def _ingest(store: SQLiteStore, pipeline: Pipeline, records: Sequence[Entry]) -> float:
    ingestor = Ingestor(store, pipeline)
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        ingestor.append(records[i : i + BATCH])
    elapsed = time.perf_counter() - start
    store.close()
    return len(records) / elapsed


def run(tmp: Path, *, n: int, rounds: int, verify_n: int) -> IntegrityResults:
    records = _records(n)
    on: list[float] = []
    off: list[float] = []
    for r in range(rounds):
        on.append(_ingest(SQLiteStore(f"sqlite:///{tmp / f'on-{r}.db'}"), Pipeline(), records))
        off.append(_ingest(_NoTreeStore(f"sqlite:///{tmp / f'off-{r}.db'}"), _NoLeafPipeline(), records))
    store = SQLiteStore(f"sqlite:///{tmp / 'verify.db'}?synchronous=OFF")
    pipeline = Pipeline()
    batch = _records(BATCH)
    for _ in range(verify_n // BATCH):
        store.append(
            [pipeline.prepare(e) for e in (make_record(input=b.input, output=b.output) for b in batch)]
        )
    verify: list[float] = []
    for _ in range(3):
        start = time.perf_counter()
        report = audit(store, [], workers=default_workers(store))
        verify.append(report.entries / (time.perf_counter() - start))
        assert report.ok, report.problems[:3]
    store.close()
    return IntegrityResults(n, on, off, verify_n, verify)


def section(res: IntegrityResults) -> str:
    slowdown = res.slowdown
    best_verify = max(res.verify)
    lines = [
        "## 3. What integrity costs, and verify speed",
        "",
        f"Ingest of {res.n:,} ~1 KB records through `Ingestor` into SQLite (WAL, synchronous=FULL), batches of "
        f"{BATCH}, {len(res.on)} alternating rounds each; records/s.",
        "",
        table(
            ["variant", "median", "best", "rounds"],
            [
                [
                    "integrity on (leaf, commitment, tree, tiles)",
                    fmt(statistics.median(res.on)),
                    fmt(max(res.on)),
                    ", ".join(fmt(x) for x in res.on),
                ],
                [
                    "integrity off (body and columns only)",
                    fmt(statistics.median(res.off)),
                    fmt(max(res.off)),
                    ", ".join(fmt(x) for x in res.off),
                ],
            ],
        ),
        "",
        table(
            ["measure", "value", "target", "verdict"],
            [
                [
                    "ingest slowdown with integrity on",
                    f"{slowdown:.1%}",
                    f"≤ {INTEGRITY_TARGET:.0%}",
                    verdict(slowdown <= INTEGRITY_TARGET),
                ],
                [
                    f"`inferlog verify` (full audit) of {res.verify_n:,} entries, records/s",
                    fmt(best_verify),
                    f"≥ {VERIFY_TARGET:,}",
                    verdict(best_verify >= VERIFY_TARGET),
                ],
            ],
        ),
        "",
        "Verify runs: "
        + ", ".join(fmt(x) for x in res.verify)
        + " records/s. The audit re-hashes every leaf, "
        "checks every payload against its salted commitment and every indexed column against its leaf, and "
        "recomputes the tree. Rows are checked in two spawned worker processes (`default_workers`, as "
        "`inferlog verify` does on a log this size) while the main process builds the tree in seq order.",
        "",
    ]
    return "\n".join(lines)
