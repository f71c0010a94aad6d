"""Benchmark 1: what one ~1 KB record costs the calling thread, against an OpenTelemetry span.

Every variant is timed per call with ``time.perf_counter_ns`` around the call only, after a warm-up,
with the real background threads running (inferlog's committer and shipper into SQLite; OTel's
BatchSpanProcessor worker into an exporter that does nothing). GC stays on, as in production.

A second part times the pieces of ``Log.record`` one by one (batch loops, GC paused) so the total
can be attributed: id, timestamp, Struct, msgpack, CRC, spool append and record()'s own Python.
"""

from __future__ import annotations

import datetime as dt
import json
import mmap
import os
import random
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from candidates import PrefixCachedUuid7
from common import Summary, per_item_us, time_each, timer_overhead_ns
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import inferlog
from inferlog.pipeline import body_of
from inferlog.record.ids import uuid7
from inferlog.record.model import InferenceRecord, Model
from inferlog.sdk.client import Durability
from inferlog.sdk.spool import SpoolWriter

SYSTEM = "credit-scoring"
FEATURES = (
    "age", "income_monthly", "income_annual", "employment_years", "debt_total", "debt_to_income",
    "credit_limit_total", "credit_utilization", "open_accounts", "closed_accounts",
    "delinquencies_12m", "delinquencies_24m", "inquiries_6m", "inquiries_12m", "mortgage_balance",
    "auto_loan_balance", "student_loan_balance", "card_balance", "savings_balance",
    "checking_balance", "months_since_last_delinquency", "oldest_account_months",
    "newest_account_months", "avg_account_age_months", "payment_history_score",
    "loan_amount_requested", "loan_term_months", "collateral_value", "household_size",
    "region_risk_index",
)  # fmt: skip
ATTRIBUTES: dict[str, Any] = {"endpoint": "/v1/score", "region": "eu-west-1", "tokens": 412}
LATENCY_MS = 3.7


@dataclass
class Workload:
    """Realistic record arguments: a pool of distinct feature vectors and their predicted outputs."""

    model: Model
    inputs: list[dict[str, float]]
    outputs: list[dict[str, float]]
    attributes: dict[str, Any] = field(default_factory=lambda: dict(ATTRIBUTES))

    @classmethod
    def make(cls, pool: int = 1024, seed: int = 7) -> Workload:
        rng = random.Random(seed)
        model = Model("credit-risk", "3.2.1", digest="sha256:" + rng.randbytes(32).hex())
        inputs = [{name: rng.uniform(0, 1000) for name in FEATURES} for _ in range(pool)]
        outputs = [{"probability": rng.random()} for _ in range(pool)]
        return cls(model, inputs, outputs)

    def entry(self, i: int = 0) -> InferenceRecord:
        return InferenceRecord(
            id=uuid7(),
            system=SYSTEM,
            ts=dt.datetime.now(dt.UTC),
            model=self.model,
            input=self.inputs[i % len(self.inputs)],
            output=self.outputs[i % len(self.outputs)],
            latency_ms=LATENCY_MS,
            attributes=dict(self.attributes),
        )

    def sizes(self) -> dict[str, int]:
        """Encoded sizes of one record: the spool's msgpack frame and the stored canonical JSON."""
        entry = self.entry()
        return {
            "msgpack (spool payload)": len(msgspec.msgpack.encode(entry)),
            "canonical JSON (stored body)": len(body_of(entry)),
        }


@dataclass
class Measured:
    name: str
    summary: Summary
    note: str = ""
    delivered: str = ""


@dataclass
class CallerResults:
    sizes: dict[str, int]
    rows: list[Measured]
    headline: dict[str, Summary]  # process, machine, decorator, otel
    breakdown: list[tuple[str, float]]  # (piece, µs per call)
    timer_ns: int
    rotation: RotationCheck


# -- harness ----------------------------------------------------------------------------------

# Every measured Log gets spool segments big enough never to rotate during a run, so that all variants
# measure the same steady state. Rotation — and a race found in it that dropped records — is measured
# separately, with the default 16 MiB segments, by rotation_check().
SEGMENT_BYTES = 256 * 1024 * 1024
MADV_POPULATE_WRITE = 23  # Linux >= 5.14; not exported by Python 3.11's mmap module


def open_log(tmp: Path, name: str, durability: Durability = "process", **options: Any) -> inferlog.Log:
    folder = tmp / name
    folder.mkdir()
    options.setdefault("spool_segment_bytes", SEGMENT_BYTES)
    return inferlog.open(
        f"sqlite:///{folder / 'log.db'}",
        system=SYSTEM,
        spool_dir=folder / "spool",
        durability=durability,
        **options,
    )


def close_checked(log: inferlog.Log, expected: int) -> str:
    """Flush and close (not timed); say whether every record reached the store exactly once."""
    flushed = log.flush(timeout=600)
    counters = log.counters
    log.close()
    ok = flushed and counters.shipped == expected and not (counters.dropped or counters.failed)
    text = f"{counters.shipped:,}/{expected:,} in store"
    if not ok:
        text += f" — PROBLEM: flushed={flushed} dropped={counters.dropped} failed={counters.failed}"
    return text


def record_caller(log: inferlog.Log, work: Workload) -> Callable[[int], object]:
    """``call(i)`` records the i-th record of the workload (used where a closure call is fine)."""
    record, model, attrs = log.record, work.model, work.attributes
    inputs, outputs = work.inputs, work.outputs
    mask = len(inputs) - 1  # the pool size is a power of two

    def call(i: int) -> object:
        return record(
            model=model, input=inputs[i & mask], output=outputs[i & mask], latency_ms=LATENCY_MS,
            attributes=attrs,
        )  # fmt: skip

    return call


def paced(call: Callable[[int], object], first: int, n: int, rate: float) -> list[int]:
    """Per-call ns of ``call(i)`` issued at a steady rate, sleeping (GIL released) in between, as a
    server thread waits on its socket between requests."""
    clock = time.perf_counter_ns
    period = int(1e9 / rate)
    samples = [0] * n
    next_at = clock()
    for k in range(n):
        next_at += period
        start = clock()
        call(first + k)
        end = clock()
        samples[k] = end - start
        if next_at > end:
            time.sleep((next_at - end) / 1e9)
    return samples


class Variant:
    """One thing to time. ``chunk`` times calls first..first+n-1; ``settle`` lets background work
    finish (untimed) so the next variant starts from quiet threads; ``close`` says what was delivered."""

    name = ""
    note = ""

    def chunk(self, first: int, n: int) -> list[int]:
        raise NotImplementedError

    def settle(self) -> None:
        pass

    def close(self) -> str:
        return ""


class RecordVariant(Variant):
    def __init__(self, log: inferlog.Log, work: Workload, name: str, note: str = "") -> None:
        self.log, self.work, self.name, self.note = log, work, name, note
        self.calls = 0

    def chunk(self, first: int, n: int) -> list[int]:
        # The loop is written out so that only the call itself is between the two clock reads.
        record, model, attrs = self.log.record, self.work.model, self.work.attributes
        inputs, outputs = self.work.inputs, self.work.outputs
        mask = len(inputs) - 1
        clock = time.perf_counter_ns
        samples = [0] * n
        for k in range(n):
            i = first + k
            x, y = inputs[i & mask], outputs[i & mask]
            start = clock()
            record(model=model, input=x, output=y, latency_ms=LATENCY_MS, attributes=attrs)
            samples[k] = clock() - start
        self.calls += n
        return samples

    def settle(self) -> None:
        self.log.flush(timeout=600)

    def close(self) -> str:
        return close_checked(self.log, self.calls)


class UnshippedRecordVariant(RecordVariant):
    """record() with the committer and shipper stopped: the caller's own work, no GIL contention."""

    def __init__(self, log: inferlog.Log, work: Workload) -> None:
        super().__init__(
            log, work, "`log.record()`, background threads stopped", "diagnostic: nothing is shipped"
        )
        log._shipper.stop()  # diagnostic only; the spool stays in the scratch folder

    def settle(self) -> None:
        pass

    def close(self) -> str:
        self.log.close(timeout=0.1)
        return "not delivered (by design)"


class PacedRecordVariant(RecordVariant):
    def __init__(self, log: inferlog.Log, work: Workload, rate: float) -> None:
        super().__init__(log, work, f"`log.record()` process, paced at {rate:,.0f}/s")
        self.rate = rate
        self.call = record_caller(log, work)

    def chunk(self, first: int, n: int) -> list[int]:
        self.calls += n
        return paced(self.call, first, n, self.rate)


class DecoratorVariant(Variant):
    """The bare function and the decorated one, timed alternately in the same chunk."""

    def __init__(self, log: inferlog.Log, work: Workload) -> None:
        self.log, self.work = log, work
        probability = work.outputs[0]["probability"]

        def predict(features: dict[str, float]) -> dict[str, float]:
            return {"probability": probability}

        self.bare = predict
        self.decorated = log.inference(work.model, attributes=work.attributes)(predict)
        self.bare_samples: list[int] = []
        self.calls = 0

    def _time(self, func: Callable[[dict[str, float]], dict[str, float]], first: int, n: int) -> list[int]:
        inputs = self.work.inputs
        mask = len(inputs) - 1
        clock = time.perf_counter_ns
        samples = [0] * n
        for k in range(n):
            x = inputs[(first + k) & mask]
            start = clock()
            func(x)
            samples[k] = clock() - start
        return samples

    def chunk(self, first: int, n: int) -> list[int]:
        bare = self._time(self.bare, first, n)
        if self.calls:  # the first chunk is the warm-up
            self.bare_samples += bare
        self.calls += n
        return self._time(self.decorated, first, n)

    def settle(self) -> None:
        self.log.flush(timeout=600)

    def close(self) -> str:
        return close_checked(self.log, self.calls)


class NullExporter(SpanExporter):
    """Accepts every batch and does nothing but count it."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def otel_attributes(work: Workload, x: dict[str, float], y: dict[str, float]) -> dict[str, Any]:
    """The record's data as span attributes; input and output as JSON strings."""
    return {
        "inference.system": SYSTEM,
        "model.name": work.model.name,
        "model.version": work.model.version,
        "model.digest": work.model.digest,
        "inference.input": json.dumps(x),
        "inference.output": json.dumps(y),
        "inference.latency_ms": LATENCY_MS,
        "endpoint": work.attributes["endpoint"],
        "region": work.attributes["region"],
        "tokens": work.attributes["tokens"],
    }


class OtelVariant(Variant):
    """One span per call, with the SDK's TracerProvider + BatchSpanProcessor (default settings).

    ``start``: start_span + end, JSON built in the call. ``current``: the same with
    start_as_current_span. ``preserialized``: start_span + end, attributes built before the clock.
    ``paced``: like ``start``, issued at a steady rate.
    """

    NAMES: ClassVar[dict[str, str]] = {
        "start": "OTel span: `start_span` + `end`, JSON attributes built in the call",
        "current": "OTel span: `with start_as_current_span`, JSON attributes built in the call",
        "preserialized": "OTel span: `start_span` + `end`, attributes prebuilt (no JSON)",
    }

    def __init__(self, work: Workload, style: str, rate: float | None = None) -> None:
        self.work, self.style, self.rate = work, style, rate
        self.exporter = NullExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("inferlog-bench")
        self.prebuilt = [otel_attributes(work, x, y) for x, y in zip(work.inputs, work.outputs, strict=True)]
        self.name = self.NAMES.get(
            style, f"OTel span (`start_span` + `end`, JSON), paced at {rate or 0:,.0f}/s"
        )
        self.created = 0

    def _untimed(self, i: int) -> object:
        mask = len(self.work.inputs) - 1
        x, y = self.work.inputs[i & mask], self.work.outputs[i & mask]
        self.tracer.start_span("inference", attributes=otel_attributes(self.work, x, y)).end()
        return None

    def chunk(self, first: int, n: int) -> list[int]:
        self.created += n
        if self.rate is not None:
            return paced(self._untimed, first, n, self.rate)
        tracer, work, prebuilt = self.tracer, self.work, self.prebuilt
        inputs, outputs = work.inputs, work.outputs
        mask = len(inputs) - 1
        clock = time.perf_counter_ns
        samples = [0] * n
        for k in range(n):
            i = (first + k) & mask
            x, y = inputs[i], outputs[i]
            if self.style == "start":
                start = clock()
                span = tracer.start_span("inference", attributes=otel_attributes(work, x, y))
                span.end()
                samples[k] = clock() - start
            elif self.style == "current":
                start = clock()
                with tracer.start_as_current_span("inference", attributes=otel_attributes(work, x, y)):
                    pass
                samples[k] = clock() - start
            else:
                attributes = prebuilt[i]
                start = clock()
                span = tracer.start_span("inference", attributes=attributes)
                span.end()
                samples[k] = clock() - start
        return samples

    def settle(self) -> None:
        self.provider.force_flush()

    def close(self) -> str:
        self.provider.shutdown()
        text = f"{self.exporter.exported:,}/{self.created:,} exported"
        if self.exporter.exported < self.created:
            text += f" ({self.created - self.exporter.exported:,} dropped: queue full)"
        return text


def interleave(variants: Sequence[Variant], n: int, warmup: int, rounds: int) -> dict[Variant, list[int]]:
    """Warm every variant up, then time them in turn, ``rounds`` times ``n // rounds`` calls each, so
    that a change in machine load during the run affects all of them alike."""
    for v in variants:
        v.chunk(0, warmup)
        v.settle()
    samples: dict[Variant, list[int]] = {v: [] for v in variants}
    per_round = max(1, n // rounds)
    for r in range(rounds):
        for v in variants:
            samples[v] += v.chunk(warmup + r * per_round, per_round)
            v.settle()
    return samples


def run(
    tmp: Path,
    *,
    n: int,
    n_machine: int,
    n_paced: int,
    warmup: int,
    rounds: int,
    breakdown_n: int,
    rate: float,
    rotation_attempts: int,
) -> CallerResults:
    work = Workload.make()
    otel = OtelVariant(work, "start")
    process = RecordVariant(open_log(tmp, "record-process"), work, "`log.record()` durability=process")
    decorator = DecoratorVariant(open_log(tmp, "decorator"), work)
    current = OtelVariant(work, "current")
    preserialized = OtelVariant(work, "preserialized")
    alone = UnshippedRecordVariant(open_log(tmp, "record-alone"), work)
    main = [otel, process, decorator, current, preserialized, alone]
    samples = interleave(main, n, warmup, rounds)

    paced_otel = OtelVariant(work, "paced", rate)
    paced_record = PacedRecordVariant(open_log(tmp, "record-paced"), work, rate)
    samples.update(interleave([paced_otel, paced_record], n_paced, min(warmup, 1000), rounds))

    machine = RecordVariant(
        open_log(tmp, "record-machine", "machine"),
        work,
        "`log.record()` durability=machine",
        "waits for the group commit (commit_interval 5 ms)",
    )
    samples.update(interleave([machine], n_machine, min(warmup, 100), 1))

    rows: list[Measured] = []
    delivered = {v: v.close() for v in [*main, paced_otel, paced_record, machine]}
    summaries = {v: Summary.of(samples[v]) for v in samples}
    bare = Summary.of(decorator.bare_samples)
    added = summaries[decorator].minus(bare)
    for v in [otel, process]:
        rows.append(Measured(v.name, summaries[v], v.note, delivered[v]))
    rows.append(Measured("bare `predict()` (no logging)", bare))
    rows.append(Measured("`@log.inference` `predict()`", summaries[decorator], "", delivered[decorator]))
    rows.append(Measured("`@log.inference` added cost (decorated − bare)", added, "statistic by statistic"))
    for v in [machine, current, preserialized, paced_otel, paced_record, alone]:
        rows.append(Measured(v.name, summaries[v], v.note, delivered[v]))
    rotation = rotation_check(tmp, work, rotation_attempts)
    rows.append(rotation.row)
    rows.append(
        Measured("timer overhead (empty lambda, same harness)", Summary.of(time_each(lambda: None, n, 1000)))
    )
    return CallerResults(
        sizes=work.sizes(),
        rows=rows,
        headline={
            "otel": summaries[otel],
            "process": summaries[process],
            "decorator": added,
            "machine": summaries[machine],
        },
        breakdown=breakdown(tmp, work, breakdown_n),
        timer_ns=timer_overhead_ns(),
        rotation=rotation,
    )


# -- where record() spends its time -----------------------------------------------------------


def breakdown(tmp: Path, work: Workload, n: int, rounds: int = 5) -> list[tuple[str, float]]:
    """µs per call of each piece of record(), each timed alone in a loop of ``n`` calls (GC paused);
    the pieces are timed in turn ``rounds`` times and the best of each is kept."""
    entries = [work.entry(i) for i in range(n)]
    encoder = msgspec.msgpack.Encoder()
    payloads = [encoder.encode(e) for e in entries]
    ids = [e.id for e in entries]
    ts = entries[0].ts
    model, attrs = work.model, work.attributes
    inputs, outputs = work.inputs, work.outputs
    mask = len(inputs) - 1
    now, utc = dt.datetime.now, dt.UTC
    candidate = PrefixCachedUuid7()
    segment = (rounds + 1) * n * 1200  # every append of every round fits: no rotation

    def loop_empty() -> None:
        for _ in range(n):
            pass

    def loop_uuid7() -> None:
        for _ in range(n):
            uuid7()

    def loop_candidate() -> None:
        for _ in range(n):
            candidate()

    def loop_now() -> None:
        for _ in range(n):
            now(utc)

    def loop_struct() -> None:
        for i in range(n):
            InferenceRecord(
                id=ids[i], system=SYSTEM, ts=ts, model=model, input=inputs[i & mask],
                output=outputs[i & mask], latency_ms=LATENCY_MS, parameters={}, status="ok",
                error=None, request_id=None, trace_id=None, span_id=None, parent_id=None,
                session_id=None, subject=None, actor=None, attributes=dict(attrs),
            )  # fmt: skip

    def loop_encode() -> None:
        for e in entries:
            encoder.encode(e)

    def loop_crc() -> None:
        for p in payloads:
            zlib.crc32(p)

    spool = SpoolWriter(tmp / "breakdown-spool", segment_bytes=segment, max_bytes=1 << 40, block_timeout=1)
    m = min(n, 5000)  # the pre-faulted spool is kept small: populating dirties every page
    warm = SpoolWriter(
        tmp / "breakdown-spool-2", segment_bytes=(rounds + 1) * m * 1200, max_bytes=1 << 40, block_timeout=1
    )
    prefaulted = True
    try:
        warm._current.mm.madvise(MADV_POPULATE_WRITE)
    except (AttributeError, OSError):
        prefaulted = False

    def loop_append() -> None:
        for p in payloads:
            spool.append(p)

    def loop_append_warm() -> None:
        for p in payloads[:m]:
            warm.append(p)

    log = open_log(tmp, "breakdown-log", spool_segment_bytes=segment)
    log._shipper.stop()  # diagnostic: the caller's work alone
    record = log.record

    def loop_record() -> None:
        for i in range(n):
            record(
                model=model, input=inputs[i & mask], output=outputs[i & mask], latency_ms=LATENCY_MS,
                attributes=attrs,
            )  # fmt: skip

    loops = [
        ("`uuid7()`", loop_uuid7),
        ("`datetime.now(UTC)`", loop_now),
        ("`InferenceRecord(...)` incl. `dict(attributes)`", loop_struct),
        ("msgpack `Encoder.encode`", loop_encode),
        ("`SpoolWriter.append` (lock, `zlib.crc32`, 2 mmap copies)", loop_append),
        ("  of which `zlib.crc32` of the payload", loop_crc),
        (
            "  the same append into pre-faulted pages"
            + ("" if prefaulted else " (madvise failed: not pre-faulted)"),
            loop_append_warm,
        ),
        ("`Log.record()` whole, background threads stopped", loop_record),
        ("empty loop iteration (included in every row)", loop_empty),
        ("candidate: prefix-cached `uuid7` (not in src)", loop_candidate),
    ]
    best = {name: float("inf") for name, _ in loops}
    for _ in range(rounds):
        for name, loop in loops:
            items = m if loop is loop_append_warm else n
            best[name] = min(best[name], per_item_us(loop, items, repeat=1))
    spool.close(delivered=True)
    warm.close(delivered=True)
    log.close(timeout=0.1)
    return [(name, best[name]) for name, _ in loops]


# -- does the committer's msync stop the caller? ----------------------------------------------


@dataclass
class GilProbe:
    megabytes: int  # dirty data synced each time
    sync_ms: float  # how long one mmap.flush() of it took
    msync_stall_ms: float  # longest pause of a Python loop on another thread during mmap.flush()
    fdatasync_stall_ms: float  # the same during os.fdatasync() of the same file


def gil_probe(tmp: Path, megabytes: int = 4, rounds: int = 5) -> GilProbe:
    """Time the longest gap in a busy Python loop while another thread syncs a dirty mapping."""
    path = tmp / "gil-probe.bin"
    size = megabytes * 1024 * 1024
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
        mm = mmap.mmap(fd, size)
        junk = os.urandom(size)
        results: dict[str, list[float]] = {"flush": [], "fdatasync": [], "sync": []}
        for how in ("flush", "fdatasync"):
            for _ in range(rounds):
                mm[:] = junk
                windows: list[tuple[int, int]] = []

                def syncer(how: str = how, windows: list[tuple[int, int]] = windows) -> None:
                    time.sleep(0.02)
                    start = time.perf_counter_ns()
                    if how == "flush":
                        mm.flush()
                    else:
                        os.fdatasync(fd)
                    windows.append((start, time.perf_counter_ns()))

                thread = threading.Thread(target=syncer)
                ticks: list[int] = []
                clock = time.perf_counter_ns
                thread.start()
                while thread.is_alive():
                    ticks.append(clock())
                ticks.append(clock())
                thread.join()
                start, end = windows[0]
                gaps = [b - a for a, b in pairwise(ticks) if b > start and a < end]
                results[how].append(max(gaps, default=0) / 1e6)
                if how == "flush":
                    results["sync"].append((end - start) / 1e6)
        mm.close()
    finally:
        os.close(fd)
        path.unlink()
    return GilProbe(
        megabytes=megabytes,
        sync_ms=sorted(results["sync"])[rounds // 2],
        msync_stall_ms=sorted(results["flush"])[rounds // 2],
        fdatasync_stall_ms=sorted(results["fdatasync"])[rounds // 2],
    )


# -- the spool rotation race ------------------------------------------------------------------


@dataclass
class RotationCheck:
    attempts: int
    records: int  # per attempt
    broken: int  # attempts in which records were dropped or the spool marked itself broken
    row: Measured


def rotation_check(tmp: Path, work: Workload, attempts: int, records: int = 70_000) -> RotationCheck:
    """record() back to back with the default 16 MiB segments, so the spool rotates about five times
    per attempt; counts the attempts that lost records (see "Problems found")."""
    broken = 0
    samples: list[int] = []
    delivered: list[str] = []
    for attempt in range(attempts):
        log = open_log(tmp, f"rotation-{attempt}", spool_segment_bytes=16 * 1024 * 1024)
        variant = RecordVariant(log, work, "")
        samples += variant.chunk(0, records)
        dropped = log.counters.dropped
        delivered.append(variant.close())
        if dropped or "PROBLEM" in delivered[-1]:
            broken += 1
    row = Measured(
        "`log.record()` process, default 16 MiB segments (rotating)",
        Summary.of(samples),
        f"{attempts} run(s) of {records:,}, no warm-up",
        "; ".join(delivered),
    )
    return RotationCheck(attempts, records, broken, row)
