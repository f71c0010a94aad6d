"""Benchmark 9: building and verifying an evidence pack, entries/s.

N ~1 KB inference records of one system (the lake bench's shape: 30 float features, 2 models, spread
over 7 UTC days) are appended to a SQLite log once and a checkpoint is signed. Each round builds the
pack for the whole period (``build_pack``: select, one inclusion proof per entry, Parquet and JSON
lines, signed manifest, then its own self-check) as a folder and as a zip, and verifies each with
``verify_pack`` (every proof against the signed checkpoint, every file's hash). Rates are entries in
the pack / wall time; rounds alternate the variants.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import load_average, machine_info, rate_row, table

from inferlog.evidence import Selection, build_pack, verify_pack
from inferlog.ingest import Ingestor
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer
from inferlog.record import Model
from inferlog.record.model import Entry
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from integrity import BATCH

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
MODELS = (Model("scorer", "3"), Model("ranker", "1"))
SYSTEM = "credit"


@dataclass
class EvidenceResults:
    n: int
    rates: dict[str, list[float]]
    sizes: dict[str, int]  # bytes of each pack variant (last round)
    facts: dict[str, str]


def _records(n: int, start: int) -> list[Entry]:
    span = 7 * 24 * 3600
    return [
        make_record(
            system=SYSTEM,
            model=MODELS[k % 2],
            ts=START + dt.timedelta(seconds=k * span // max(n, 1)),
            input={f"f{i}": 0.1 * i + k * 1e-3 for i in range(30)},
            output={"probability": (k % 100) / 100},
            attributes={"endpoint": "/v1/score", "region": "eu-west-1"},
        )
        for k in range(start, min(start + BATCH * 10, n))
    ]


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(tmp: Path, *, n: int, rounds: int) -> EvidenceResults:
    tmp = tmp / "evidence"
    tmp.mkdir()
    store = SQLiteStore(f"sqlite:///{tmp / 'log.db'}")
    ingestor = Ingestor(store)
    for start in range(0, n, BATCH * 10):  # made a slice at a time: 1 M records would not fit in memory
        records = _records(n, start)
        for i in range(0, len(records), BATCH):
            ingestor.append(records[i : i + BATCH])
    key = tmp / "signer.key"
    signer = init_signer(key, origin="bench.example/log")
    Checkpointer(store, CheckpointSigner.beside_key(signer, key)).checkpoint()
    selection = Selection(SYSTEM, START, START + dt.timedelta(days=8))
    rates: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}

    def timed(name: str, action: Callable[[], int]) -> None:
        started = time.perf_counter()
        entries = action()
        rates.setdefault(name, []).append(entries / (time.perf_counter() - started))

    for r in range(rounds):
        for suffix in ("", ".zip"):
            out = tmp / f"pack-{r}{suffix}"
            kind = "zip" if suffix else "folder"

            def build(o: Path = out) -> int:
                return build_pack(store, selection, signer, o).entries

            timed(f"`build_pack`, {kind} (includes its self-check)", build)

            def verify(o: Path = out) -> int:
                report = verify_pack(o, [signer.verifier()])
                if not report.ok:
                    raise AssertionError(f"the pack does not verify: {report.problems[:3]}")
                return report.entries

            timed(f"`verify_pack`, {kind}", verify)
            sizes[kind] = _size(out)
    store.close()
    facts = machine_info(tmp)
    facts["load at end"] = load_average()
    return EvidenceResults(n, rates, sizes, facts)


def section(res: EvidenceResults) -> str:
    rows = [rate_row(name, values) for name, values in res.rates.items()]
    sizes = ", ".join(f"{kind} {size / 1e6:.1f} MB" for kind, size in res.sizes.items())
    return "\n".join(
        [
            "## 9. Evidence packs: build and verify",
            "",
            f"{res.n:,} ~1 KB inference records of one system over 7 UTC days in a SQLite log, one signed "
            "checkpoint; each round builds the pack for the whole period (`build_pack`: selection, an inclusion "
            "proof per entry, Parquet and JSON lines, the signed manifest, then the pack's own self-check) as a "
            "folder and as a zip, and verifies each with `verify_pack` (every proof against the signed "
            f"checkpoint, every file's hash). Entries/s. Pack sizes: {sizes}.",
            "",
            f"Measured {res.facts['date']} on {res.facts['CPU']} ({res.facts['cores']} cores), "
            f"{res.facts['Python']}; load average at the end {res.facts['load at end']}.",
            "",
            table(["variant", "median", "best", "rounds"], rows),
            "",
        ]
    )
