"""SQL of the monitor's rollup tables, shared by the SQLite and PostgreSQL stores (``mark`` differs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from inferlog.store.base import Rollup, RollupFilter, RollupKey, RollupState

ROLLUP_COLUMNS = "level, system, model, version, bucket, payloads, data"
STATE = "state"  # the monitor_values name of the fold cursor and write counter
KEY_CHUNK = 200  # keys per lookup statement


def select_sql(where: RollupFilter, table: str, mark: str) -> tuple[str, list[Any]]:
    """The SELECT of the rollups ``where`` asks for, by scope then bucket."""
    clauses = [f"level = {mark}"]
    params: list[Any] = [where.level]
    for column in ("system", "model", "version"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    if where.since is not None:
        clauses.append(f"bucket >= {mark}")
        params.append(where.since)
    if where.until is not None:
        clauses.append(f"bucket < {mark}")
        params.append(where.until)
    if where.with_payloads:
        clauses.append("payloads > 0")
    sql = (
        f"SELECT {ROLLUP_COLUMNS} FROM {table} WHERE {' AND '.join(clauses)} "
        "ORDER BY bucket, system, model, version"
    )
    return sql, params


def keys_sql(keys: Sequence[RollupKey], table: str, mark: str) -> tuple[str, list[Any]]:
    """The SELECT of the rollups at exactly ``keys`` (at most :data:`KEY_CHUNK` of them)."""
    one = f"(level = {mark} AND system = {mark} AND model = {mark} AND version = {mark} AND bucket = {mark})"
    params: list[Any] = [value for key in keys for value in key]
    return f"SELECT {ROLLUP_COLUMNS} FROM {table} WHERE {' OR '.join([one] * len(keys))}", params


def rollup_of(row: Sequence[Any]) -> Rollup:
    level, system, model, version, bucket, payloads, data = row
    return Rollup(int(level), system, model, version, int(bucket), int(payloads), bytes(data))


def row_values(rollup: Rollup) -> tuple[Any, ...]:
    return (
        rollup.level,
        rollup.system,
        rollup.model,
        rollup.version,
        rollup.bucket,
        rollup.payloads,
        rollup.data,
    )


def encode_state(state: RollupState) -> bytes:
    return msgspec.json.encode({"cursor": state.cursor, "generation": state.generation})


def decode_state(value: bytes | None) -> RollupState:
    if value is None:
        return RollupState()
    data = msgspec.json.decode(bytes(value))
    return RollupState(int(data["cursor"]), int(data["generation"]))
