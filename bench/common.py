"""Shared helpers for the benchmarks: machine facts, latency summaries, markdown tables.

Not a package: the scripts in ``bench/`` import each other as plain modules (``run.py`` puts this
folder on ``sys.path``).
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem_of(path: Path) -> str:
    """The filesystem type holding ``path`` (longest matching mount point in /proc/mounts)."""
    best, kind = "", "unknown"
    try:
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) < 3:
                continue
            mount = fields[1]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, f"{fields[2]} ({fields[0]} on {mount})"
    except OSError:
        pass
    return kind


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """Other work on the machine skews every number here: the load average says how much there was."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


class OtherLoad:
    """How much CPU other processes used while the benchmark ran (from /proc/stat and os.times)."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            ticks = [int(x) for x in fields]
            busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
            busy_s = busy / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            busy_s = float("nan")
        own = os.times()
        return time.monotonic(), busy_s, own.user + own.system

    def cores(self) -> float:
        """Average number of cores other processes kept busy since this object was made."""
        t0, busy0, own0 = self._start
        t1, busy1, own1 = self._sample()
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-9))


def machine_info(tmp: Path) -> dict[str, str]:
    """Facts that decide how to read the numbers."""
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "OS": f"{platform.system()} {platform.release()}",
        "SQLite": sqlite3.sqlite_version,
        "inferlog": _version("inferlog"),
        "msgspec": _version("msgspec"),
        "opentelemetry-sdk": _version("opentelemetry-sdk"),
        "scratch filesystem": f"{tmp} — {_filesystem_of(tmp)}",
        "load average at start (1/5/15 min)": load_average(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- latency samples ------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Summary:
    """A latency distribution, in microseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    p999: float
    mean: float
    max: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Summary:
        ordered = sorted(samples_ns)
        return cls(
            n=len(ordered),
            p50=percentile(ordered, 0.50) / 1000,
            p90=percentile(ordered, 0.90) / 1000,
            p99=percentile(ordered, 0.99) / 1000,
            p999=percentile(ordered, 0.999) / 1000,
            mean=sum(ordered) / len(ordered) / 1000,
            max=ordered[-1] / 1000,
        )

    def minus(self, other: Summary) -> Summary:
        """Statistic-by-statistic difference (an estimate of added cost, not a distribution)."""
        return Summary(
            n=min(self.n, other.n),
            p50=self.p50 - other.p50,
            p90=self.p90 - other.p90,
            p99=self.p99 - other.p99,
            p999=self.p999 - other.p999,
            mean=self.mean - other.mean,
            max=self.max - other.max,
        )


def time_each(call: Callable[[], object], n: int, warmup: int) -> list[int]:
    """Per-call wall time in ns of ``call()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    clock = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        start = clock()
        call()
        samples[i] = clock() - start
    return samples


def per_item_us(call: Callable[[], object], items: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` wall time of ``call()`` divided by ``items``, in µs (GC paused)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            call()
            best = min(best, time.perf_counter_ns() - start)
        finally:
            gc.enable()
    return best / items / 1000


def timer_overhead_ns(n: int = 200_000) -> int:
    """Median cost of the two ``perf_counter_ns`` calls around an empty call."""
    return percentile(sorted(time_each(lambda: None, n, 1000)), 0.5)


# -- markdown ---------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 2) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def rate_row(name: str, values: Sequence[float]) -> list[str]:
    """A table row for a measure taken over rounds: name, median, best, every round."""
    return [name, fmt(statistics.median(values)), fmt(max(values)), ", ".join(fmt(v) for v in values)]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table; the first column left-aligned, the rest right-aligned."""
    out = ["| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|")
    out.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"
