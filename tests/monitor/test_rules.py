"""The policy file's [monitoring] table: the documented shape parses, every mistake is one line naming
the key, and a policy without the table keeps the digest it always had."""

from __future__ import annotations

import ast
import datetime as dt
import sys
from pathlib import Path

import pytest

import inferlog.monitor
from inferlog.errors import UsageError
from inferlog.monitor.policy import AlertRule, FeatureConfig, MonitoringPolicy, ReferenceSpec
from inferlog.monitor.rules import format_window, mask_url, parse_window
from inferlog.privacy.policy import Policy, parse_policy

UTC = dt.UTC

EXAMPLE = """
[monitoring]
webhooks = ["https://hooks.example.com/services/T000/B000/secret-token"]

[monitoring.systems.credit-scoring]
features = ["income", "age", "employment"]
categorical = ["employment"]
task = "classification"

[monitoring.references.q3]
system = "credit-scoring"
since = 2026-07-01T00:00:00Z
until = 2026-10-01T00:00:00Z

[monitoring.references.training]
system = "credit-scoring"
file = "reference.parquet"

[[monitoring.alerts]]
name = "credit errors"
metric = "error_rate"
system = "credit-scoring"
above = 0.05
window = "15m"
min_volume = 20

[[monitoring.alerts]]
name = "income drift"
metric = "psi:income"
system = "credit-scoring"
model = "scorer"
version = "3"
above = 0.2
window = "1d"
reference = "q3"
webhook = "https://hooks.example.com/drift"

[[monitoring.alerts]]
name = "accuracy low"
metric = "accuracy"
system = "credit-scoring"
below = 0.8
window = "1h30m"
"""

# Policies without [monitoring]: their digests as computed before the table existed.
EMPTY_DIGEST = "477332a87ac1ca404813d467bb1a60aa41361fd3a990ce2ba35d7e2ac4f56c6a"


def parse(text: str) -> Policy:
    return parse_policy(text, "inferlog.toml", base_dir=Path("/etc/inferlog"))


def refused(text: str) -> str:
    with pytest.raises(UsageError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith("inferlog.toml: monitoring"), message
    assert "\n" not in message
    return message


RULE = """
[[monitoring.alerts]]
name = "r"
metric = "error_rate"
system = "credit"
above = 0.05
window = "15m"
"""


def rule_with(**changes: str | None) -> str:
    """RULE with lines replaced (value given) or removed (None); new keys are appended."""
    lines = RULE.strip().splitlines()
    out = [lines[0]]
    seen = set()
    for line in lines[1:]:
        key = line.split("=")[0].strip()
        seen.add(key)
        if key in changes:
            if changes[key] is not None:
                out.append(f"{key} = {changes[key]}")
        else:
            out.append(line)
    out += [f"{key} = {value}" for key, value in changes.items() if key not in seen and value is not None]
    return "\n".join(out) + "\n"


def test_the_documented_shape_parses() -> None:
    """Systems, both kinds of reference, rules with every option, and webhooks land where they should."""
    monitoring = parse(EXAMPLE).monitoring
    assert monitoring.systems["credit-scoring"] == FeatureConfig(
        features=("income", "age", "employment"), categorical=("employment",), task="classification"
    )
    assert monitoring.references["q3"] == ReferenceSpec(
        name="q3",
        system="credit-scoring",
        since=dt.datetime(2026, 7, 1, tzinfo=UTC),
        until=dt.datetime(2026, 10, 1, tzinfo=UTC),
    )
    assert monitoring.references["training"].file == Path("/etc/inferlog/reference.parquet")
    errors, drift, accuracy = monitoring.alerts
    assert errors == AlertRule(
        name="credit errors", metric="error_rate", system="credit-scoring", window=dt.timedelta(minutes=15),
        above=0.05, min_volume=20,
    )  # fmt: skip
    assert drift.reference == "q3"
    assert (drift.model, drift.version) == ("scorer", "3")
    assert drift.webhooks == ("https://hooks.example.com/drift",)
    assert errors.webhooks is None  # falls back to the policy's webhooks
    assert accuracy.below == 0.8
    assert accuracy.window == dt.timedelta(hours=1, minutes=30)
    assert monitoring.webhooks == ("https://hooks.example.com/services/T000/B000/secret-token",)


def test_docs_show_the_policy_these_tests_check() -> None:
    """The [monitoring] example in docs/privacy-policy.md parses to the same rules as EXAMPLE."""
    text = (Path(__file__).parents[2] / "docs" / "privacy-policy.md").read_text(encoding="utf-8")
    start = text.index("```toml\n[monitoring]")
    block = text[start + len("```toml\n") : text.index("```", start + 7)]
    assert parse(block).digest == parse(EXAMPLE).digest


def test_a_policy_without_monitoring_keeps_its_digest() -> None:
    """No [monitoring] table: no "monitoring" key in the view, and the digest computed before it existed."""
    policy = parse("")
    assert policy.monitoring == MonitoringPolicy()
    assert "monitoring" not in policy.to_dict()
    assert policy.digest == EMPTY_DIGEST
    assert parse(EXAMPLE).digest != EMPTY_DIGEST


def test_the_view_masks_webhook_urls_but_the_digest_sees_them() -> None:
    """A webhook's secret path never shows in the normalized view; changing it still changes the digest."""
    policy = parse(EXAMPLE)
    view = str(policy.to_dict())
    assert "secret-token" not in view
    assert "T000" not in view
    assert mask_url("https://hooks.example.com/services/T000/B000/secret-token") in view
    other = parse(EXAMPLE.replace("secret-token", "other-token"))
    assert other.digest != policy.digest


def test_digest_ignores_layout() -> None:
    """An inline table and reordered keys give the same digest."""
    again = """
[[monitoring.alerts]]
window = "15m"
above = 0.05
system = "credit"
metric = "error_rate"
name = "r"
"""
    assert parse(again).digest == parse(RULE).digest


def test_windows() -> None:
    """Windows read s/m/h/d/w and combinations; format_window writes them back."""
    assert parse_window("30s") == dt.timedelta(seconds=30)
    assert parse_window("1h30m") == dt.timedelta(minutes=90)
    assert parse_window("2w") == dt.timedelta(days=14)
    assert format_window(dt.timedelta(minutes=90)) == "1h30m"
    assert format_window(parse_window("1d2h")) == "1d2h"
    for bad in ("", "15", "15 m", "m", "1m1h", "0m", "15min"):
        with pytest.raises(ValueError, match="window"):
            parse_window(bad)


def test_a_period_of_use_id_is_a_reference() -> None:
    """A drift rule may name a period of use by its id instead of a [monitoring.references] name."""
    period = "0190a6f8-1c2d-7e3f-8a9b-0c1d2e3f4a5b"
    text = rule_with(metric='"psi:income"', reference=f'"{period}"')
    assert parse(text).monitoring.alerts[0].reference == period


def test_a_reference_date_is_midnight_utc() -> None:
    """since/until may be dates: midnight UTC."""
    text = '[monitoring.references.q]\nsystem = "s"\nsince = 2026-07-01\nuntil = 2026-08-01\n'
    ref = parse(text).monitoring.references["q"]
    assert (ref.since, ref.until) == (
        dt.datetime(2026, 7, 1, tzinfo=UTC),
        dt.datetime(2026, 8, 1, tzinfo=UTC),
    )


BAD = {
    "unknown top key": ("[monitoring]\nalert = []\n", "monitoring.alert: unknown key", "did you mean alerts?"),
    "unknown rule key": (rule_with(abov="0.1"), "monitoring.alerts[0].abov: unknown key", "did you mean above?"),
    "both thresholds": (rule_with(below="0.01"), "monitoring.alerts[0]: give exactly one threshold", "both above and below"),
    "no threshold": (rule_with(above=None), "monitoring.alerts[0]: give exactly one threshold", "neither above nor below"),
    "bad window": (rule_with(window='"15 minutes"'), "monitoring.alerts[0].window:", "not a window"),
    "zero window": (rule_with(window='"0m"'), "monitoring.alerts[0].window:", "longer than zero"),
    "window number": (rule_with(window="15"), "monitoring.alerts[0].window: 15 is not a window", "15m"),
    "missing name": (rule_with(name=None), "monitoring.alerts[0]: name is required", ""),
    "missing window": (rule_with(window=None), "monitoring.alerts[0]: window is required", ""),
    "unknown metric": (rule_with(metric='"error_rat"'), 'unknown metric "error_rat"', "did you mean error_rate?"),
    "feature metric without feature": (rule_with(metric='"psi"'), 'write "psi:<feature>"', ""),
    "not a feature metric": (rule_with(metric='"pis:income"'), 'is not a per-feature metric', "did you mean psi?"),
    "drift without reference": (rule_with(metric='"psi:income"'), '"psi" compares with a reference', "reference ="),
    "unknown reference": (
        "[monitoring.references.q3]\nsystem = \"credit\"\nfile = \"r.csv\"\n" + rule_with(metric='"psi:income"', reference='"q4"'),
        'monitoring.alerts[0].reference: unknown reference "q4"', "(known: q3;",
    ),
    "reference on a plain metric": (rule_with(reference='"q3"'), '"error_rate" takes no reference', ""),
    "version without model": (rule_with(version='"3"'), "monitoring.alerts[0].version: a version needs its model", ""),
    "threshold not a number": (rule_with(above='"5%"'), "monitoring.alerts[0].above: must be a finite number", ""),
    "threshold nan": (rule_with(above="nan"), "monitoring.alerts[0].above: must be a finite number", ""),
    "negative min_volume": (rule_with(min_volume="-1"), "monitoring.alerts[0].min_volume: must be a whole number", ""),
    "boolean min_volume": (rule_with(min_volume="true"), "monitoring.alerts[0].min_volume: must be a whole number", ""),
    "duplicate names": (RULE + RULE, 'monitoring.alerts[1].name: another rule is already called "r"', ""),
    "webhook not http": (rule_with(webhook='"ftp://x/y"'), "monitoring.alerts[0].webhook: \"ftp://x/y\" is not an http(s) URL", ""),
    "global webhook not a url": ("[monitoring]\nwebhooks = [\"hooks\"]\n", "monitoring.webhooks[0]:", "not an http(s) URL"),
    "alerts not a list": ("[monitoring]\nalerts = 3\n", "monitoring.alerts: must be a list of tables", ""),
    "feature not monitored": (
        "[monitoring.systems.credit]\nfeatures = [\"age\"]\n"
        + rule_with(metric='"missing_rate:income"'),
        'feature "income" is not monitored for this system', "add it",
    ),
    "categorical not a feature": (
        "[monitoring.systems.credit]\nfeatures = [\"age\"]\ncategorical = [\"job\"]\n",
        'monitoring.systems.credit.categorical: "job" is not one of the features', "",
    ),
    "bad task": ("[monitoring.systems.credit]\ntask = \"ranking\"\n", "monitoring.systems.credit.task: must be one of", ""),
    "unknown system key": ("[monitoring.systems.credit]\nfeature = []\n", "monitoring.systems.credit.feature: unknown key", "did you mean features?"),
    "reference both": (
        "[monitoring.references.q]\nsystem = \"s\"\nfile = \"r.csv\"\nsince = 2026-07-01\n",
        "monitoring.references.q: give either a period (since, until) or a file, not both", "",
    ),
    "reference neither": ("[monitoring.references.q]\nsystem = \"s\"\n", "monitoring.references.q: give a period", ""),
    "reference without system": ("[monitoring.references.q]\nfile = \"r.csv\"\n", "monitoring.references.q: system is required", ""),
    "reference half a period": ("[monitoring.references.q]\nsystem = \"s\"\nsince = 2026-07-01\n", "until is required", ""),
    "reference backwards": (
        "[monitoring.references.q]\nsystem = \"s\"\nsince = 2026-08-01\nuntil = 2026-07-01\n",
        "monitoring.references.q: since 2026-08-01T00:00:00Z is not before until", "",
    ),
    "reference naive time": (
        "[monitoring.references.q]\nsystem = \"s\"\nsince = 2026-07-01T00:00:00\nuntil = 2026-08-01\n",
        "monitoring.references.q.since: 2026-07-01T00:00:00 has no timezone", "",
    ),
    "reference file type": ("[monitoring.references.q]\nsystem = \"s\"\nfile = \"r.xlsx\"\n", "must be a .parquet or .csv file", ""),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_mistake_is_one_clear_line(case: str) -> None:
    """Each mistake stops the parse with one line naming the file, the key and the reason (and a hint)."""
    text, where, hint = BAD[case]
    message = refused(text)
    assert where in message, message
    assert hint in message, message


PURE = ("policy.py", "rules.py", "source.py")


@pytest.mark.parametrize("module", PURE)
def test_the_policy_values_and_their_parser_are_pure(module: str) -> None:
    """The privacy core imports these: they import only the stdlib, inferlog.errors, the monitor values and
    the privacy core's own table checks (pure too)."""
    path = Path(inferlog.monitor.__file__).parent / module
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.startswith("inferlog"):
                assert name in {
                    "inferlog.errors",
                    "inferlog.monitor.policy",
                    "inferlog.monitor.source",
                    "inferlog.privacy.tables",
                }, name
            else:
                assert name.split(".")[0] in sys.stdlib_module_names, name
