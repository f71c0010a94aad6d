"""Benchmark 6: what sealing payloads costs at ingest.

Encryption on vs off: the same pre-built records appended through the one ingest path (``Ingestor``)
into a fresh SQLite file each round, in batches of 1000. "On" runs the policy's processors as the
server does: input and output sealed (a fresh data key per record, AES-256-GCM per field, the key
wrapped by the month's epoch key and by the data subject's key, kc in the leaf), subjects
pseudonymized, the wrapped keys written beside the entries. "Off" is the same log without a policy.
Rounds alternate on/off so machine noise hits both alike.

The SDK row measures ``Log.record()`` + the shipper end to end (spool, then store) with and without
the policy, as records/s over a burst of N records and a final flush.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from common import load_average, machine_info, rate_row, table, verdict

import inferlog
from inferlog.keystore.protection import load_protection
from inferlog.pipeline import Pipeline
from inferlog.record.model import Entry
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from integrity import BATCH, _ingest  # the same batches and timing as the integrity bench

TARGET = 0.25  # at most 25 % slower
POLICY = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]
"""


@dataclass
class PrivacyResults:
    n: int
    on: list[float]  # records/s per round, Ingestor
    off: list[float]
    sdk_n: int
    sdk_on: list[float]
    sdk_off: list[float]
    facts: dict[str, str]

    @staticmethod
    def slowdown(on: list[float], off: list[float]) -> float:
        return 1 - statistics.median(on) / statistics.median(off)


def _records(n: int) -> list[Entry]:
    return [
        make_record(
            input={f"f{i}": 0.1 * i + k * 1e-3 for i in range(30)},
            output={"probability": (k % 100) / 100},
            attributes={"endpoint": "/v1/score", "region": "eu-west-1", "tokens": k % 512},
            subject=f"customer-{k % 50}",
        )
        for k in range(n)
    ]


def _sdk(folder: Path, config: Path | None, n: int) -> float:
    folder.mkdir()
    model = inferlog.Model("scorer", "1")
    features = {f"f{i}": 0.1 * i for i in range(30)}
    with inferlog.open(f"sqlite:///{folder / 'log.db'}", system="bench", config=config) as log:
        start = time.perf_counter()
        for k in range(n):
            log.record(model=model, input=features, output={"probability": 0.5}, subject=f"customer-{k % 50}")
        log.flush(timeout=600)
        return n / (time.perf_counter() - start)


def run(tmp: Path, *, n: int, rounds: int, sdk_n: int) -> PrivacyResults:
    tmp = tmp / "privacy"  # the other sections use the same scratch folder (and names like on-0.db)
    tmp.mkdir()
    config = tmp / "inferlog.toml"
    config.write_text(POLICY)
    protection = load_protection(config)
    records = _records(n)
    on: list[float] = []
    off: list[float] = []
    sdk_on: list[float] = []
    sdk_off: list[float] = []
    for r in range(rounds):
        on.append(_ingest(SQLiteStore(f"sqlite:///{tmp / f'on-{r}.db'}"), Pipeline([protection]), records))
        off.append(_ingest(SQLiteStore(f"sqlite:///{tmp / f'off-{r}.db'}"), Pipeline(), records))
        sdk_on.append(_sdk(tmp / f"sdk-on-{r}", config, sdk_n))
        sdk_off.append(_sdk(tmp / f"sdk-off-{r}", None, sdk_n))
    facts = machine_info(tmp)
    facts["load at end"] = load_average()
    return PrivacyResults(n, on, off, sdk_n, sdk_on, sdk_off, facts)


def section(res: PrivacyResults) -> str:
    ingest = res.slowdown(res.on, res.off)
    sdk = res.slowdown(res.sdk_on, res.sdk_off)

    lines = [
        "## 6. What encryption costs",
        "",
        f"Ingest of {res.n:,} ~1 KB records through `Ingestor` into SQLite (WAL, synchronous=FULL), batches of "
        f"{BATCH}, {len(res.on)} alternating rounds; and {res.sdk_n:,} `Log.record()` calls + flush through the "
        'SDK (spool, shipper, store). Records/s. "On" seals input and output (fresh data key per record, '
        "AES-256-GCM, nested-wrapped by epoch and subject keys from the local key store) and pseudonymizes "
        "the subject.",
        "",
        f"Measured {res.facts['date']} on {res.facts['CPU']} ({res.facts['cores']} cores), {res.facts['Python']}; "
        f"load average at the end {res.facts['load at end']}.",
        "",
        table(
            ["variant", "median", "best", "rounds"],
            [
                rate_row("Ingestor, encryption on", res.on),
                rate_row("Ingestor, encryption off", res.off),
                rate_row("SDK end to end, encryption on", res.sdk_on),
                rate_row("SDK end to end, encryption off", res.sdk_off),
            ],
        ),
        "",
        table(
            ["measure", "value", "target", "verdict"],
            [
                [
                    "ingest slowdown with encryption on",
                    f"{ingest:.1%}",
                    f"≤ {TARGET:.0%}",
                    verdict(ingest <= TARGET),
                ],
                ["SDK slowdown with encryption on", f"{sdk:.1%}", f"≤ {TARGET:.0%}", verdict(sdk <= TARGET)],
            ],
        ),
        "",
    ]
    return "\n".join(lines)
