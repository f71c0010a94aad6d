"""Checking a parsed TOML file table by table, with messages that name the file and the key path.

The policy file's parser (:mod:`inferlog.privacy.policy`) and its ``[monitoring]`` table's
(:mod:`inferlog.monitor.rules`) both build on :class:`TableChecker`, so a typo reads the same wherever
it is: ``inferlog.toml: monitoring.alerts[0].abov: unknown key (...); did you mean above?``.
Pure: standard library and :mod:`inferlog.errors` only.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from inferlog.errors import UsageError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(prefix: str, *parts: str | int) -> str:
    """A key path for messages: ``prefix`` (already a path) then names, quoted when not bare, and ``[i]``."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            out += f".{name}" if out else name
    return out


def show(value: Any) -> str:
    """A value as a message quotes it (a table is "a table", not its contents)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str | int | float | bool | list):
        return json.dumps(value, default=str)
    return str(value)


class TableChecker:
    """One pass over parsed TOML; ``fail`` raises :class:`UsageError` with the file and key path in front."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> NoReturn:
        raise UsageError(f"{self.source}: {where}: {message}")

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        """Refuse a key that is not ``allowed``, suggesting the closest one."""
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                self.fail(key_path(where, key), f"unknown key (expected one of: {', '.join(allowed)}){hint}")

    def table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table ([{where}]), not {show(value)}")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"must be a non-empty string, not {show(value)}")
        return value
