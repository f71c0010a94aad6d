"""Benchmark 5: what ``inferlog proxy`` adds to an OIP call, against a real MLServer, in the same run.

MLServer 1.7 (from PyPI, in its own venv: ``tests/fix_mlserver.py`` builds it under ``.cache/``) serves
a scikit-learn LogisticRegression trained on iris. ``inferlog proxy`` runs in front of it as users run
it: a subprocess writing a SQLite log through the SDK's spool (durability ``process``). One client
(httpx, keep-alive) sends the same infer call straight to MLServer and through the proxy, pair after
pair, the order inside each pair drawn at random, each call timed alone. Added latency is proxied
minus direct, statistic by statistic, and also the median of the per-pair differences. After the run
the proxy is stopped (its spool flushed) and the log must hold exactly one record per proxied call.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import OtherLoad, Summary, fmt, load_average, machine_info, table, verdict

import inferlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.fix_mlserver

from tests.fix_mlserver import MODEL, MLServer, ProxyProcess, ensure_venv

P50_TARGET_US = 1000.0
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]  # iris rows, two with a 3.0
PAYLOADS = {
    "1 row": [ROWS[0]],
    "1,000 rows": [ROWS[i % 3] for i in range(1000)],
    "1,000 rows, no integral floats": [ROWS[0]] * 1000,
}


@dataclass
class PayloadResult:
    name: str
    request_bytes: int
    response_bytes: int
    direct: Summary
    proxied: Summary
    paired: Summary  # per-pair proxied - direct

    @property
    def added(self) -> Summary:
        return self.proxied.minus(self.direct)


@dataclass
class ProxyResults:
    payloads: list[PayloadResult]
    records: int
    shipped_at_shutdown: int
    expected: int
    mlserver: str
    facts: dict[str, str]


def _body(rows: list[list[float]]) -> bytes:
    tensor = {"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}
    return json.dumps({"id": "bench", "inputs": [tensor]}).encode()


def _measure(
    client: httpx.Client, direct: str, proxied: str, body: bytes, n: int, warmup: int, rng: random.Random
) -> tuple[list[int], list[int], int]:
    path = f"/v2/models/{MODEL}/infer"
    headers = {"content-type": "application/json"}
    clock = time.perf_counter_ns
    times: dict[str, list[int]] = {direct: [], proxied: []}
    size = 0
    for i in range(warmup + n):
        pair = [direct, proxied]
        rng.shuffle(pair)
        for base in pair:
            start = clock()
            answer = client.post(base + path, content=body, headers=headers)
            elapsed = clock() - start
            if answer.status_code != 200:
                raise RuntimeError(f"{base} answered {answer.status_code}: {answer.text[:200]}")
            size = len(answer.content)
            if i >= warmup:
                times[base].append(elapsed)
    return times[direct], times[proxied], size


def run(tmp: Path, *, n: int, warmup: int) -> ProxyResults:
    python = ensure_venv()
    facts = machine_info(tmp)
    other = OtherLoad()
    version = subprocess.run(
        [str(python), "-c", "import mlserver; print(mlserver.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    server = MLServer(python, tmp / "mlserver")
    server.start()
    proxy = ProxyProcess(server.url, tmp / "proxy-log.db")
    proxy.start()
    rng = random.Random(5)
    results = []
    try:
        with httpx.Client(timeout=60) as client:
            for name, rows in PAYLOADS.items():
                body = _body(rows)
                direct, proxied, size = _measure(client, server.url, proxy.url, body, n, warmup, rng)
                paired = [p - d for p, d in zip(proxied, direct, strict=True)]
                results.append(
                    PayloadResult(
                        name, len(body), size, Summary.of(direct), Summary.of(proxied), Summary.of(paired)
                    )
                )
        proxy.stop()
        shipped = len(proxy.records())
        # What the proxy's shipper had not stored by the end of close() is still in its spool, durable;
        # the next open of the same log ships it. Do that, then count again.
        inferlog.open(f"sqlite:///{proxy.db}", system="iris").close(timeout=300)
        records = len(proxy.records())
    finally:
        proxy.stop()
        server.stop()
    facts["other"] = f"{other.cores():.2f} cores"
    facts["load at end"] = load_average()
    return ProxyResults(results, records, shipped, (n + warmup) * len(PAYLOADS), version, facts)


def section(res: ProxyResults) -> str:
    f = res.facts
    rows = []
    for p in res.payloads:
        rows.append([
            f"{p.name} ({p.request_bytes:,} B in, {p.response_bytes:,} B out)", f"{p.direct.n:,}",
            fmt(p.direct.p50), fmt(p.proxied.p50), fmt(p.added.p50), fmt(p.paired.p50),
            fmt(p.direct.p99), fmt(p.proxied.p99), fmt(p.added.p99),
        ])  # fmt: skip
    small, big, plain = res.payloads
    verdicts = [
        [f"added p50, {p.name}", f"{fmt(p.added.p50)} µs", f"< {P50_TARGET_US:,.0f} µs",
         verdict(p.added.p50 < P50_TARGET_US)]
        for p in res.payloads
    ]  # fmt: skip
    verdicts.append(
        [
            "records in the log (stored when the proxy stopped / after its spool was replayed)",
            f"{res.shipped_at_shutdown:,} / {res.records:,} of {res.expected:,}",
            "one per proxied call",
            verdict(res.records == res.expected),
        ]
    )
    return "\n".join(
        [
            "## 5. The OIP proxy against MLServer",
            "",
            f"Measured {f['date']} on {f['CPU']} ({f['cores']} cores), {f['Python']}, {f['OS']}; load average "
            f"at start {f['load average at start (1/5/15 min)']}, at end {f['load at end']}; other processes "
            f"used {f['other']} on average during the run.",
            "",
            f"MLServer {res.mlserver} (`mlserver-sklearn`, `parallel_workers: 0`) serves a scikit-learn "
            "LogisticRegression trained on iris; `inferlog proxy` runs in front of it as a subprocess writing a "
            "SQLite log through the SDK spool (durability `process`; as shipped: aiohttp to the upstream, uvicorn with httptools, no access log). One "
            "httpx client with keep-alive sends the same `POST /v2/models/iris/infer` straight to MLServer and "
            "through the proxy, pair after pair, the order inside each pair drawn at random, each call timed "
            "alone after a warm-up. Added = proxied − direct, statistic by statistic; the paired column is the "
            "median of the per-pair differences. Times in µs.",
            "",
            table(
                [
                    "payload",
                    "pairs",
                    "direct p50",
                    "proxied p50",
                    "added p50",
                    "paired p50",
                    "direct p99",
                    "proxied p99",
                    "added p99",
                ],
                rows,
            ),
            "",
            table(["measure", "measured", "target (issue 6)", "verdict"], verdicts),
            "",
            f"**Reading.** For a one-row call the proxy adds {fmt(small.added.p50)} µs at p50 and "
            f"{fmt(small.added.p99)} µs at p99 to MLServer's {fmt(small.direct.p50)} µs: a second HTTP hop on "
            "loopback (parse, forward, read back) and the record written to the spool. On 2 cores the proxy, "
            "MLServer and the client share the CPUs, so the proxy's work is not hidden behind the model's. "
            f"The 1,000-row call adds {fmt(big.added.p50)} µs, the same size without integral floats "
            f"{fmt(plain.added.p50)} µs; what a large payload adds beyond the one-row cost is the SDK's "
            "shipper in the same process (msgpack decode, RFC 8785 body, SQLite) holding the GIL while the "
            "proxy's event loop waits. Integral floats (`3.0`, which RFC 8785 spells `3`) once cost several "
            "milliseconds per 1,000 rows here; the canonicalizer now respells them in a few C-level passes. "
            "A proxy that logs to a server (`--log http://…`) leaves that work to the server. Records the "
            "shipper has not stored when the proxy stops stay in the spool, durable, and the next open of the "
            "log ships them (the last row).",
            "",
        ]
    )
