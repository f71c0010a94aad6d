"""The policy file, ``inferlog.toml``: what to redact, pseudonymize and encrypt, how long to keep it.

Loaded into frozen dataclasses and validated in full before anything runs: a policy decides what
personal data is kept and for how long, so a typo must stop the program with a message naming the
file, the key and the reason, never pass silently. The format is documented, with a full example,
in docs/privacy-policy.md.

Pure: :func:`parse_policy` takes text; :func:`load_policy` only reads the file first.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, total_ordering
from pathlib import Path
from types import MappingProxyType
from typing import Any

from inferlog.errors import UsageError
from inferlog.monitor.policy import MonitoringPolicy
from inferlog.monitor.rules import monitoring_to_dict, parse_monitoring
from inferlog.privacy.paths import WILDCARD, parse_path
from inferlog.privacy.redact import BUILTIN_DETECTORS, RedactRule, custom_detector
from inferlog.privacy.tables import TableChecker, key_path, show

MONTH_DAYS = 30.436875  # the mean Gregorian month: 365.2425 / 12
DEFAULTS = "*"  # the name forced() gives the [defaults] section
DEFAULT_KEYSTORE = "keys.db"
FOREVER = "forever"

# -- durations --------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d{1,6})y)?(?:(\d{1,6})mo)?(?:(\d{1,6})w)?(?:(\d{1,6})d)?")
DURATION_HINT = "use e.g. 400d, 18mo, 2y"


@total_ordering
@dataclass(frozen=True, eq=True)
class Duration:
    """A retention period: whole calendar months plus days (``2y`` = 24 months, ``2w`` = 14 days).

    Months stay months, so ``before()`` moves the calendar ("6mo" before 31 August is 28 or 29
    February). Durations are ordered by approximate length, a month counting 30.436875 days: that is
    how a retention is compared with its minimum ("6mo" meets a 6mo minimum, "180d" does not,
    "183d" does).
    """

    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``<n>y``, ``<n>mo``, ``<n>w``, ``<n>d``, or several in that order (``1y6mo``, ``2w3d``)."""
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            raise ValueError(f'"{text}" is not a duration ({DURATION_HINT})')
        years, months, weeks, days = (int(g or 0) for g in match.groups())
        duration = cls(months=years * 12 + months, days=weeks * 7 + days)
        if not duration.months and not duration.days:
            raise ValueError(f'"{text}" is not a duration: it must be longer than zero')
        return duration

    @property
    def approx_days(self) -> float:
        return self.months * MONTH_DAYS + self.days

    def before(self, t: dt.datetime) -> dt.datetime:
        """``t`` minus this duration: months on the calendar (the day clamped to the month's end), then days.

        Arithmetic is on ``t``'s wall clock and keeps its tzinfo; pass UTC times. Periods reaching
        before year 1 give ``datetime.min``.
        """
        total = t.year * 12 + (t.month - 1) - self.months
        year, month0 = divmod(total, 12)
        floor = dt.datetime.min.replace(tzinfo=t.tzinfo)
        if year < 1:
            return floor
        day = min(t.day, calendar.monthrange(year, month0 + 1)[1])
        moved = t.replace(year=year, month=month0 + 1, day=day)
        try:
            return moved - dt.timedelta(days=self.days)
        except OverflowError:
            return floor

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Duration):
            return NotImplemented
        return (self.approx_days, self.months) < (other.approx_days, other.months)

    def __str__(self) -> str:
        years, months = divmod(self.months, 12)
        text = f"{self.months}mo" if months else (f"{years}y" if years else "")
        return text + (f"{self.days}d" if self.days else "")


FLOOR = Duration(months=6)
"""Six months: the AI Act's minimum for keeping logs (Art. 19 for providers, 26(6) for deployers)."""

# -- what a policy says -----------------------------------------------------------------------


@dataclass(frozen=True)
class SystemPolicy:
    """What applies to one system's entries: the defaults, overridden by its ``[systems.<name>]``."""

    name: str = DEFAULTS
    encrypt: tuple[str, ...] = ()
    pseudonymize: tuple[str, ...] = ()
    redact: tuple[RedactRule, ...] = ()
    retention: Duration | None = None  # None: kept forever
    minimum_retention: Duration = FLOOR
    force_short_retention: str | None = None

    @property
    def short(self) -> bool:
        """Whether this keeps less than its minimum, or has a minimum below the AI Act's floor."""
        if self.minimum_retention < FLOOR:
            return True
        return self.retention is not None and self.retention < self.minimum_retention

    @property
    def forced(self) -> str | None:
        """The recorded reason when the retention is short (and allowed only because of it)."""
        return self.force_short_retention if self.short else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "encrypt": list(self.encrypt),
            "force_short_retention": self.force_short_retention,
            "minimum_retention": str(self.minimum_retention),
            "pseudonymize": list(self.pseudonymize),
            "redact": [{"detectors": list(r.detectors), "paths": list(r.paths)} for r in self.redact],
            "retention": str(self.retention) if self.retention is not None else None,
        }


@dataclass(frozen=True)
class Hold:
    """A legal hold: entries it covers are kept past retention and cannot be erased until it is lifted.

    ``start`` is inclusive and ``end`` exclusive (a date ``until`` ends after that whole day, UTC);
    a hold without ``system`` covers every system, one without ``subject`` every subject.
    """

    name: str
    reason: str
    system: str | None = None
    subject: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def applies_to(self, system: str) -> bool:
        """Whether the hold can cover any entry of ``system``."""
        return self.system is None or self.system == system

    def blocks_system(self, system: str) -> bool:
        """Whether the hold covers *every* entry of ``system`` (no subject, no time window)."""
        return self.applies_to(system) and self.subject is None and self.start is None and self.end is None

    def covers(self, system: str, subject: str | None, ts: dt.datetime) -> bool:
        """Whether the entry of ``system`` about ``subject`` at ``ts`` (timezone-aware) is held."""
        if self.system is not None and self.system != system:
            return False
        if self.subject is not None and self.subject != subject:
            return False
        if self.start is not None and ts < self.start:
            return False
        return self.end is None or ts < self.end

    def to_dict(self) -> dict[str, Any]:
        return {
            "end": _iso(self.end),
            "name": self.name,
            "reason": self.reason,
            "start": _iso(self.start),
            "subject": self.subject,
            "system": self.system,
        }


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"


@dataclass(frozen=True, eq=False)
class Policy:
    """A whole policy file: defaults, per-system overrides, custom detectors, holds, the key store."""

    defaults: SystemPolicy = field(default_factory=SystemPolicy)
    systems: Mapping[str, SystemPolicy] = field(default_factory=lambda: MappingProxyType({}))
    holds: tuple[Hold, ...] = ()
    detectors: Mapping[str, re.Pattern[str]] = field(default_factory=lambda: MappingProxyType({}))
    keystore_path: Path | None = None  # resolved against the policy file's folder
    keystore: str | None = None  # the path as written (what to_dict shows)
    source: str = "(no policy file)"
    monitoring: MonitoringPolicy = field(default_factory=MonitoringPolicy)  # the [monitoring] table

    @classmethod
    def default(cls) -> Policy:
        """No file: nothing redacted, pseudonymized or encrypted; kept forever; minimum 6 months."""
        return cls()

    def for_system(self, name: str) -> SystemPolicy:
        """The effective policy of one system (the defaults when it has no section of its own)."""
        found = self.systems.get(name)
        return found if found is not None else replace(self.defaults, name=name)

    def all_systems(self) -> tuple[SystemPolicy, ...]:
        """The defaults, then every system with a section, in name order."""
        return (self.defaults, *(self.systems[name] for name in sorted(self.systems)))

    def forced(self) -> list[tuple[str, str]]:
        """``(system, reason)`` wherever a short retention is allowed by force (``*`` = the defaults)."""
        return [(p.name, p.forced) for p in self.all_systems() if p.forced is not None]

    def to_dict(self) -> dict[str, Any]:
        """A normalized, JSON-ready view: durations as strings, holds by name with ISO times, keys sorted.

        ``monitoring`` is there only when the file has a ``[monitoring]`` table, so a policy without
        one keeps the digest it always had.
        """
        out = {
            "defaults": self.defaults.to_dict(),
            "detectors": {name: self.detectors[name].pattern for name in sorted(self.detectors)},
            "holds": [h.to_dict() for h in sorted(self.holds, key=lambda h: h.name)],
            "keystore": None if self.keystore is None else {"path": self.keystore},
            "systems": {name: self.systems[name].to_dict() for name in sorted(self.systems)},
        }
        if self.monitoring != MonitoringPolicy():
            out["monitoring"] = monitoring_to_dict(self.monitoring)
        return out

    @cached_property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict`: unchanged by key order or layout."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- reading ----------------------------------------------------------------------------------


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate the policy file at ``path``; relative paths in it are relative to its folder."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{where}: the policy file is not UTF-8 text") from None
    except OSError as e:
        raise UsageError(f"{where}: cannot read the policy file: {e.strerror or e}") from None
    return parse_policy(text, source=str(where), base_dir=where.parent)


def parse_policy(text: str, source: str = "inferlog.toml", base_dir: Path | None = None) -> Policy:
    """Validate policy text (TOML) into a :class:`Policy`; every problem is a UsageError naming the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{source}: not valid TOML: {e}") from None
    return _Parser(source).policy(data, base_dir)


_TOP = ("defaults", "detectors", "holds", "keystore", "monitoring", "systems")
_SECTION = ("encrypt", "force_short_retention", "minimum_retention", "pseudonymize", "redact", "retention")
_RULE = ("detectors", "paths")
_HOLD = ("from", "name", "reason", "subject", "system", "until")
_RETENTION_KEYS = ("retention", "minimum_retention", "force_short_retention")
_WHOLE_OBJECTS = frozenset({"parameters", "attributes"})


class _Parser(TableChecker):
    """One pass over the parsed TOML; ``fail`` raises with the file and key path in front."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.custom: dict[str, re.Pattern[str]] = {}
        self.keystore = False

    def policy(self, data: dict[str, Any], base_dir: Path | None) -> Policy:
        self.keys(data, _TOP, "")
        keystore_text = self.keystore_table(data.get("keystore"))
        self.keystore = keystore_text is not None
        self.custom = self.detectors(data.get("detectors", {}))
        defaults_set = self.section(self.table(data.get("defaults", {}), "defaults"), "defaults")
        defaults = SystemPolicy(encrypt=("input", "output") if self.keystore else ())
        defaults = replace(defaults, **defaults_set)
        self.check_retention(defaults, "defaults", defaults_set)
        systems = {}
        for name, table in self.table(data.get("systems", {}), "systems").items():
            where = key_path("systems", name)
            if name == DEFAULTS:
                self.fail(
                    where, f'"{DEFAULTS}" is reserved (it stands for [defaults]); use [defaults] instead'
                )
            own = self.section(self.table(table, where), where)
            merged = replace(defaults, name=name, **own)
            if own.keys() & set(_RETENTION_KEYS) and "force_short_retention" not in own:
                # A force justifies the retention of its own section: a system that sets its own
                # retention or minimum does not inherit the defaults' force.
                merged = replace(merged, force_short_retention=None)
            self.check_retention(merged, where, own)
            systems[name] = merged
        holds = self.holds(data.get("holds", []))
        keystore_path = None
        if keystore_text is not None:
            keystore_path = Path(keystore_text)
            if base_dir is not None and not keystore_path.is_absolute():
                keystore_path = base_dir / keystore_path
        monitoring = (
            parse_monitoring(data["monitoring"], source=self.source, base_dir=base_dir)
            if "monitoring" in data
            else MonitoringPolicy()
        )
        return Policy(
            defaults=defaults, systems=MappingProxyType(systems), holds=holds,
            detectors=MappingProxyType(self.custom), keystore_path=keystore_path, keystore=keystore_text,
            source=self.source, monitoring=monitoring,
        )  # fmt: skip

    # -- shapes ----------------------------------------------------------------------------------

    def strings(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(where, f"must be a list of strings, not {show(value)}")
        return value

    def paths(self, value: Any, where: str) -> tuple[str, ...]:
        out = []
        for i, text in enumerate(self.strings(value, where)):
            try:
                out.append(".".join(parse_path(text)))
            except UsageError as e:
                self.fail(f"{where}[{i}]", str(e))
        return tuple(sorted(set(out)))

    def duration(self, value: Any, where: str, *, forever: bool = False) -> Duration | None:
        if forever and value == FOREVER:
            return None
        if not isinstance(value, str):
            self.fail(where, f"{show(value)} is not a duration ({DURATION_HINT})")
        try:
            return Duration.parse(value)
        except ValueError as e:
            self.fail(where, str(e))

    # -- tables --------------------------------------------------------------------------------

    def keystore_table(self, value: Any) -> str | None:
        if value is None:
            return None
        table = self.table(value, "keystore")
        self.keys(table, ("path",), "keystore")
        return self.string(table.get("path", DEFAULT_KEYSTORE), "keystore.path")

    def detectors(self, value: Any) -> dict[str, re.Pattern[str]]:
        out = {}
        for name, pattern in self.table(value, "detectors").items():
            where = key_path("detectors", name)
            text = self.string(pattern, where)
            try:
                compiled = re.compile(text)
            except re.error as e:
                self.fail(where, f"invalid regular expression: {e}")
            if compiled.match("") is not None:
                self.fail(where, f"{show(text)} matches the empty string; a detector must match something")
            try:
                custom_detector(name, compiled)
            except UsageError as e:
                self.fail(where, str(e))
            out[name] = compiled
        return out

    def section(self, table: dict[str, Any], where: str) -> dict[str, Any]:
        """The fields a [defaults] or [systems.<name>] table sets, converted and checked."""
        self.keys(table, _SECTION, where)
        out: dict[str, Any] = {}
        if "encrypt" in table:
            out["encrypt"] = self.paths(table["encrypt"], key_path(where, "encrypt"))
            for i, path in enumerate(out["encrypt"]):
                self.check_encryptable(path, f"{key_path(where, 'encrypt')}[{i}]")
            if out["encrypt"] and not self.keystore:
                self.fail(
                    key_path(where, "encrypt"),
                    'encrypt needs [keystore] (add [keystore] path = "keys.db", or encrypt = [])',
                )
        if "pseudonymize" in table:
            out["pseudonymize"] = self.paths(table["pseudonymize"], key_path(where, "pseudonymize"))
            if out["pseudonymize"] and not self.keystore:
                self.fail(
                    key_path(where, "pseudonymize"),
                    'pseudonymize needs [keystore], where its key is kept (add [keystore] path = "keys.db")',
                )
        if "retention" in table:
            out["retention"] = self.duration(table["retention"], key_path(where, "retention"), forever=True)
        if "minimum_retention" in table:
            out["minimum_retention"] = self.duration(
                table["minimum_retention"], key_path(where, "minimum_retention")
            )
        if "force_short_retention" in table:
            out["force_short_retention"] = self.string(
                table["force_short_retention"], key_path(where, "force_short_retention")
            )
        if "redact" in table:
            rules = table["redact"]
            if not isinstance(rules, list):
                self.fail(
                    key_path(where, "redact"),
                    f"must be a list of tables ([[{where}.redact]]), not {show(rules)}",
                )
            out["redact"] = tuple(
                self.rule(rule, key_path(where, "redact", i)) for i, rule in enumerate(rules)
            )
        return out

    def check_encryptable(self, path: str, where: str) -> None:
        segments = path.split(".")
        if WILDCARD in segments:
            self.fail(where, f'cannot encrypt "{path}": name fields, not wildcards')
        if segments[0] == "subject":
            self.fail(
                where, 'cannot encrypt "subject": it is pseudonymized instead (pseudonymize = ["subject"])'
            )
        if segments[0] == "error":
            self.fail(where, 'cannot encrypt "error": it must stay an error object (redact it instead)')
        if segments[0] in _WHOLE_OBJECTS and len(segments) == 1:
            self.fail(
                where,
                f'cannot encrypt all of "{path}": it must stay an object; name a key below it ({path}.<key>)',
            )

    def rule(self, value: Any, where: str) -> RedactRule:
        table = self.table(value, where)
        self.keys(table, _RULE, where)
        if "detectors" not in table:
            self.fail(where, 'detectors is required (e.g. detectors = ["email", "phone"])')
        names = self.strings(table["detectors"], key_path(where, "detectors"))
        if not names:
            self.fail(key_path(where, "detectors"), "name at least one detector")
        known = sorted({*BUILTIN_DETECTORS, *self.custom})
        for name in names:
            if name not in known:
                self.fail(
                    key_path(where, "detectors"), f'unknown detector "{name}" (known: {", ".join(known)})'
                )
        paths = self.paths(table.get("paths", ["*"]), key_path(where, "paths"))
        if not paths:
            self.fail(key_path(where, "paths"), 'name at least one path (["*"] = every payload field)')
        return RedactRule(detectors=tuple(sorted(set(names))), paths=paths)

    def check_retention(self, policy: SystemPolicy, where: str, own: Mapping[str, Any]) -> None:
        """Refuse a retention below its minimum, or a minimum below the floor, unless forced."""
        if policy.force_short_retention:
            return
        how = (
            f'add force_short_retention = "<why, and who approved it>" to [{where}]; '
            "the force and its reason are recorded in the log"
        )

        def origin(key: str) -> str:
            return "" if key in own or where == "defaults" else " (from [defaults])"

        floor = f"{FLOOR}, the AI Act's floor for keeping logs (Art. 19, 26(6))"
        if policy.minimum_retention < FLOOR:
            self.fail(
                key_path(where, "minimum_retention"),
                f'"{policy.minimum_retention}"{origin("minimum_retention")} is shorter than {floor}; '
                f"refused unless forced: {how}",
            )
        if policy.retention is not None and policy.retention < policy.minimum_retention:
            key = "retention" if "retention" in own or "minimum_retention" not in own else "minimum_retention"
            self.fail(
                key_path(where, key),
                f'retention "{policy.retention}"{origin("retention")} is shorter than minimum_retention '
                f'"{policy.minimum_retention}"{origin("minimum_retention")} (the floor is {floor}); '
                f"to keep less anyway, {how}",
            )

    def holds(self, value: Any) -> tuple[Hold, ...]:
        if not isinstance(value, list):
            self.fail("holds", f"must be a list of tables ([[holds]]), not {show(value)}")
        seen: set[str] = set()
        out = []
        for i, item in enumerate(value):
            where = key_path("holds", i)
            table = self.table(item, where)
            self.keys(table, _HOLD, where)
            for required in ("name", "reason"):
                if required not in table:
                    self.fail(where, f"{required} is required")
            name = self.string(table["name"], key_path(where, "name"))
            if name in seen:
                self.fail(
                    key_path(where, "name"), f'another hold is already called "{name}"; names must be unique'
                )
            seen.add(name)
            hold = Hold(
                name=name,
                reason=self.string(table["reason"], key_path(where, "reason")),
                system=self.string(table["system"], key_path(where, "system")) if "system" in table else None,
                subject=self.string(table["subject"], key_path(where, "subject"))
                if "subject" in table
                else None,
                start=self.instant(table.get("from"), key_path(where, "from"), end=False),
                end=self.instant(table.get("until"), key_path(where, "until"), end=True),
            )
            if hold.start is not None and hold.end is not None and hold.start >= hold.end:
                self.fail(where, f"from {_iso(hold.start)} is not before until {_iso(hold.end)}")
            out.append(hold)
        return tuple(out)

    def instant(self, value: Any, where: str, *, end: bool) -> dt.datetime | None:
        """A TOML datetime (with an offset) or date (UTC; an ``until`` date includes that whole day)."""
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                self.fail(where, f"{value.isoformat()} has no timezone (write e.g. {value.isoformat()}Z)")
            return value.astimezone(dt.UTC)
        if not isinstance(value, dt.date):
            self.fail(
                where,
                f"must be a date or a datetime with a timezone (2026-01-01T00:00:00Z), not {show(value)}",
            )
        start = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return start + dt.timedelta(days=1) if end else start
