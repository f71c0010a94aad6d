"""SQL the two SQL stores share: filters, the page query, stats. Only the dialect differs.

A :class:`Dialect` says what differs — the table's name, the parameter mark, how to test "any of",
how timestamps are bound and read, how attributes are matched — and everything else is written once.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inferlog.errors import UsageError
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import StoredEntry
from inferlog.store.base import Page, Purge, Query

Execute = Callable[[str, Sequence[Any]], Iterable[Sequence[Any]]]


@dataclass(frozen=True)
class Dialect:
    table: str  # "entries", "inferlog.entries"
    mark: str  # "?", "%s"
    any_of: Callable[[str, tuple[str, ...]], tuple[str, list[Any]]]  # column IN (...) / = ANY(...)
    bind_ts: Callable[[dt.datetime], Any]  # a filter time as the ts column stores it
    read_ts: Callable[[Any], dt.datetime]  # a ts column value as a datetime
    attributes: Callable[[Mapping[str, Any]], tuple[list[str], list[Any]]]  # attribute equality


def equality_filters(query: Query) -> list[tuple[str, Any]]:
    """(column, value) for each equality filter a query sets."""
    pairs = (
        ("system", query.system),
        ("kind", query.kind),
        ("model_name", query.model),
        ("model_version", query.version),
        ("status", query.status),
        ("request_id", query.request_id),
        ("trace_id", query.trace_id),
        ("session_id", query.session_id),
        ("subject", query.subject),
        ("inference_id", query.inference_id),
    )
    return [(column, value) for column, value in pairs if value is not None]


def where(query: Query, d: Dialect) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (joined by AND) and their parameters for a query's filters."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in equality_filters(query):
        clauses.append(f"{column} = {d.mark}")
        params.append(value)
    for column, values in (("system", query.systems), ("kind", query.kinds)):
        if values is not None and "*" not in values:
            clause, values_params = d.any_of(column, values)
            clauses.append(clause)
            params += values_params
    _in_time(clauses, params, query.since, query.until, d)
    if query.attributes:
        for key, wanted in query.attributes.items():  # no stored JSON value is NaN or infinite: refused alike
            if isinstance(wanted, float) and not math.isfinite(wanted):
                raise UsageError(f"attribute {key!r} must be a finite number, got {wanted!r}")
        attribute_clauses, attribute_params = d.attributes(query.attributes)
        clauses += attribute_clauses
        params += attribute_params
    return clauses, params


def page_sql(query: Query, d: Dialect, columns: str) -> tuple[str, list[Any]]:
    """The SELECT that answers ``query`` (one row more than the page, to know whether more follow)."""
    clauses, params = where(query, d)
    if query.order == "asc":
        clauses.append(f"seq > {d.mark}")
        params.append(query.after)
    elif query.after:
        clauses.append(f"seq < {d.mark}")
        params.append(query.after)
    sql = (
        f"SELECT {columns} FROM {d.table}"
        + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        + f" ORDER BY seq {'ASC' if query.order == 'asc' else 'DESC'} LIMIT {d.mark}"
    )
    params.append(query.limit + 1)
    return sql, params


def page(entries: list[StoredEntry], limit: int) -> Page:
    """A page from the rows :func:`page_sql` fetched (up to limit + 1)."""
    more = len(entries) > limit
    kept = entries[:limit]
    return Page(kept, kept[-1].seq if more and kept else None)


def stats(execute: Execute, query: Query, d: Dialect, size: int) -> dict[str, Any]:
    """Counts by kind, status, system and model, time range, latency percentiles."""
    clauses, params = where(query, d)
    clause = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    table = d.table

    def one(sql: str, extra: Sequence[Any] = ()) -> Sequence[Any]:
        return next(iter(execute(sql, [*params, *extra])))

    def grouped(column: str) -> dict[str, int]:
        rows = execute(f"SELECT {column}, count(*) FROM {table}{clause} GROUP BY {column}", params)
        return {str(key): count for key, count in rows if key is not None}

    total, first, last = one(f"SELECT count(*), min(ts), max(ts) FROM {table}{clause}")
    models = execute(
        "SELECT model_name, model_version, count(*), sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) "
        f"FROM {table}{clause}{' AND' if clause else ' WHERE'} kind = 'inference' "
        "GROUP BY model_name, model_version ORDER BY count(*) DESC",
        params,
    )
    timed = " AND ".join([*clauses, "kind = 'inference'", "latency_ms IS NOT NULL"])
    source = f"FROM {table} WHERE {timed}"
    (count,) = one(f"SELECT count(*) {source}")
    latencies: dict[str, float] = {}
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)) if count else ():
        offset = min(count - 1, int(fraction * count))
        (value,) = one(f"SELECT latency_ms {source} ORDER BY latency_ms LIMIT 1 OFFSET {d.mark}", [offset])
        latencies[name] = float(value)
    return {
        "entries": total,
        "first_ts": format_timestamp(d.read_ts(first)) if first is not None else None,
        "last_ts": format_timestamp(d.read_ts(last)) if last is not None else None,
        "by_kind": grouped("kind"),
        "by_status": grouped("status"),
        "by_system": grouped("system"),
        "models": [
            {"model": name, "version": version, "count": count, "errors": int(errors or 0)}
            for name, version, count, errors in models
        ],
        "latency_ms": latencies,
        "size": size,
    }


def purge_where(purge: Purge, d: Dialect, id_text: str = "id") -> tuple[str, list[Any]]:
    """The WHERE clause (without ``WHERE``) selecting the live payloads a purge removes.

    ``id_text`` is the id column as text (PostgreSQL keeps ids as uuid, feedback refers to them as text).
    """
    clauses = ["kind IN ('inference', 'feedback')", "body IS NOT NULL"]
    params: list[Any] = []
    _matching(clauses, params, d, id_text, purge.system, purge.subjects, None, purge.before)
    for hold in purge.keep:
        held: list[str] = []
        _matching(held, params, d, id_text, hold.system, hold.subjects, hold.since, hold.until)
        # coalesce: a NULL subject (or model) must count as "not held", not as unknown.
        clauses.append(f"NOT coalesce(({' AND '.join(held) or 'TRUE'}), FALSE)")
    return " AND ".join(clauses), params


def _matching(
    clauses: list[str],
    params: list[Any],
    d: Dialect,
    id_text: str,
    system: str | None,
    subjects: tuple[str, ...],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> None:
    """Add the conditions of a purge or a hold: its system, its subjects, its time range (whichever are set)."""
    if system is not None:
        clauses.append(f"system = {d.mark}")
        params.append(system)
    if subjects:  # their inferences, and the feedback about them (which has no subject)
        clause, subject_params = _of_subjects(subjects, d, id_text)
        clauses.append(clause)
        params += subject_params
    _in_time(clauses, params, since, until, d)


def _in_time(
    clauses: list[str], params: list[Any], since: dt.datetime | None, until: dt.datetime | None, d: Dialect
) -> None:
    """Add ``ts >= since`` and ``ts < until``, for whichever is set."""
    for bound, op in ((since, ">="), (until, "<")):
        if bound is not None:
            clauses.append(f"ts {op} {d.mark}")
            params.append(d.bind_ts(bound))


def _of_subjects(subjects: tuple[str, ...], d: Dialect, id_text: str) -> tuple[str, list[Any]]:
    """Entries of these subjects: their own, and feedback about their inferences."""
    own, own_params = d.any_of("subject", subjects)
    about, about_params = d.any_of("s.subject", subjects)
    clause = (
        f"({own} OR inference_id IN (SELECT s.{id_text} FROM {d.table} s "
        f"WHERE s.kind = 'inference' AND {about}))"
    )
    return clause, own_params + about_params
