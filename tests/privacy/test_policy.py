"""The policy file: the documented example parses, systems merge with the defaults, every mistake is a
one-line UsageError naming the file, the key and the reason, and the digest ignores layout."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from inferlog.errors import UsageError
from inferlog.privacy.policy import FLOOR, Duration, Hold, Policy, SystemPolicy, load_policy, parse_policy
from inferlog.privacy.redact import RedactRule

UTC = dt.UTC

EXAMPLE = """
[keystore]
path = "keys.db"            # optional; relative to the policy file's folder. Enables encryption.

[defaults]                  # applies to every system unless overridden in [systems.<name>]
encrypt = ["input", "output"]
pseudonymize = ["subject"]
retention = "400d"
minimum_retention = "6mo"

[[defaults.redact]]
detectors = ["email", "phone", "iban", "card"]
paths = ["*"]

[detectors]
customer_no = 'C-\\d{6}'

[systems.credit-scoring]
retention = "2y"
encrypt = ["input", "output", "attributes.applicant"]
[[systems.credit-scoring.redact]]
detectors = ["email", "customer_no"]
paths = ["input", "output"]

[systems.chatbot]
retention = "30d"
force_short_retention = "DPIA 2026-04: chat transcripts kept 30 days, approved by DPO"

[[holds]]
name = "case-2026-17"
reason = "litigation"
system = "credit-scoring"
subject = "customer-42"
from = 2026-01-01T00:00:00Z
until = 2026-06-30T00:00:00Z
"""


def parse(text: str) -> Policy:
    return parse_policy(text, "inferlog.toml")


def refused(text: str) -> str:
    with pytest.raises(UsageError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith("inferlog.toml: ")
    assert "\n" not in message
    return message


# -- the example --------------------------------------------------------------------------------


def test_the_documented_example_parses() -> None:
    """Every section of the example lands where it should."""
    policy = parse_policy(EXAMPLE, "inferlog.toml", base_dir=Path("/etc/inferlog"))
    assert policy.keystore_path == Path("/etc/inferlog/keys.db")
    assert policy.defaults == SystemPolicy(
        name="*",
        encrypt=("input", "output"),
        pseudonymize=("subject",),
        redact=(RedactRule(("card", "email", "iban", "phone"), ("*",)),),
        retention=Duration(days=400),
        minimum_retention=FLOOR,
    )
    assert set(policy.systems) == {"credit-scoring", "chatbot"}
    assert policy.detectors["customer_no"].pattern == r"C-\d{6}"
    assert policy.holds == (
        Hold(
            name="case-2026-17", reason="litigation", system="credit-scoring", subject="customer-42",
            start=dt.datetime(2026, 1, 1, tzinfo=UTC), end=dt.datetime(2026, 6, 30, tzinfo=UTC),
        ),
    )  # fmt: skip


def test_the_example_in_the_docs_is_this_example() -> None:
    """docs/privacy-policy.md shows exactly the policy these tests check (same digest)."""
    doc = (Path(__file__).parents[2] / "docs" / "privacy-policy.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    assert parse(example.group(1)).digest == parse(EXAMPLE).digest


def test_for_system_merges_the_section_over_the_defaults() -> None:
    """Fields a system sets win; the rest come from [defaults]; an unknown system gets the defaults."""
    policy = parse(EXAMPLE)
    credit = policy.for_system("credit-scoring")
    assert credit.name == "credit-scoring"
    assert credit.retention == Duration(months=24)
    assert credit.encrypt == ("attributes.applicant", "input", "output")
    assert credit.redact == (RedactRule(("customer_no", "email"), ("input", "output")),)
    assert credit.pseudonymize == ("subject",)  # from [defaults]
    assert credit.minimum_retention == FLOOR
    chatbot = policy.for_system("chatbot")
    assert chatbot.retention == Duration(days=30)
    assert chatbot.encrypt == ("input", "output")
    assert chatbot.redact == policy.defaults.redact
    other = policy.for_system("fraud")
    assert other == SystemPolicy(**{**policy.defaults.__dict__, "name": "fraud"})
    assert [p.name for p in policy.all_systems()] == ["*", "chatbot", "credit-scoring"]


def test_forced_lists_where_short_retention_was_allowed() -> None:
    """Only the chatbot keeps less than its minimum, and its reason is what gets recorded."""
    policy = parse(EXAMPLE)
    assert policy.forced() == [("chatbot", "DPIA 2026-04: chat transcripts kept 30 days, approved by DPO")]
    assert policy.for_system("chatbot").short
    assert not policy.for_system("credit-scoring").short


def test_a_force_in_defaults_reaches_only_systems_that_inherit_the_retention() -> None:
    """A system with its own retention does not inherit the defaults' force; one without does."""
    text = """
[defaults]
retention = "30d"
force_short_retention = "pilot, approved by DPO"
[systems.a]
encrypt = []
[systems.b]
retention = "1y"
"""
    policy = parse(text)
    assert policy.forced() == [("*", "pilot, approved by DPO"), ("a", "pilot, approved by DPO")]
    assert policy.for_system("b").force_short_retention is None
    message = refused(text.replace('retention = "1y"', 'retention = "60d"'))
    assert "systems.b.retention" in message


def test_default_policy_changes_nothing_and_keeps_forever() -> None:
    """No file: no encryption, redaction or pseudonyms; retention forever; minimum 6 months."""
    policy = Policy.default()
    rules = policy.for_system("anything")
    assert (rules.encrypt, rules.pseudonymize, rules.redact, rules.retention) == ((), (), (), None)
    assert rules.minimum_retention == Duration(months=6)
    assert policy.keystore_path is None
    assert policy.holds == ()
    assert dict(policy.detectors) == {}
    assert policy.forced() == []
    assert parse("").digest == policy.digest


def test_keystore_enables_default_encryption_and_forever_is_allowed() -> None:
    """With [keystore], input and output are encrypted unless said otherwise; "forever" means no retention."""
    policy = parse(
        '[keystore]\n[defaults]\nretention = "1y"\n[systems.audit]\nretention = "forever"\nencrypt = []'
    )
    assert policy.keystore_path == Path("keys.db")
    assert policy.defaults.encrypt == ("input", "output")
    assert policy.for_system("audit").encrypt == ()
    assert policy.for_system("audit").retention is None


def test_load_policy_reads_the_file_and_resolves_the_keystore(tmp_path: Path) -> None:
    """load_policy names the file in errors and resolves the keystore next to it."""
    path = tmp_path / "inferlog.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    policy = load_policy(path)
    assert policy.keystore_path == tmp_path / "keys.db"
    assert policy.digest == parse(EXAMPLE).digest
    path.write_text('[defaults]\nretention = "3x"\n', encoding="utf-8")
    with pytest.raises(UsageError, match=re.escape(f'{path}: defaults.retention: "3x" is not a duration')):
        load_policy(path)
    with pytest.raises(UsageError, match="cannot read the policy file"):
        load_policy(tmp_path / "missing.toml")


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[systems.credit]\nretention = "3x"',
            'inferlog.toml: systems.credit.retention: "3x" is not a duration (use e.g. 400d, 18mo, 2y)',
        ),
        ("[defaults]\nretention = 400", "inferlog.toml: defaults.retention: 400 is not a duration"),
        (
            '[defaults]\nminimum_retention = "forever"',
            'defaults.minimum_retention: "forever" is not a duration',
        ),
        ('[defaults]\nretension = "1y"', "defaults.retension: unknown key (expected one of: "),
        ('[defaults]\nretension = "1y"', "did you mean retention?"),
        ('[sytems.x]\nretention = "1y"', "inferlog.toml: sytems: unknown key"),
        ('[keystore]\nfile = "k.db"', "keystore.file: unknown key (expected one of: path)"),
        (
            "[[defaults.redact]]\ndetectors = ['email']\npath = ['input']",
            "defaults.redact[0].path: unknown key",
        ),
        ("[[holds]]\nname = 'h'\nreason = 'r'\nsubjet = 's'", "holds[0].subjet: unknown key"),
        ('[systems.x]\nencrypt = ["input"]', "systems.x.encrypt: encrypt needs [keystore]"),
        ('[defaults]\npseudonymize = ["subject"]', "defaults.pseudonymize: pseudonymize needs [keystore]"),
        ("[keystore]\n[defaults]\nencrypt = ['input.*']", 'defaults.encrypt[0]: cannot encrypt "input.*"'),
        ("[keystore]\n[defaults]\nencrypt = ['subject']", 'cannot encrypt "subject": it is pseudonymized'),
        ("[keystore]\n[defaults]\nencrypt = ['attributes']", "name a key below it"),
        ("[defaults]\nencrypt = 'input'", 'defaults.encrypt: must be a list of strings, not "input"'),
        (
            "[keystore]\n[defaults]\nencrypt = ['model.name']",
            'defaults.encrypt[0]: "model.name" is not a path',
        ),
        (
            "[[defaults.redact]]\ndetectors = ['emial']",
            'defaults.redact[0].detectors: unknown detector "emial" (known: card, email, iban, phone)',
        ),
        ("[[defaults.redact]]\ndetectors = []", "defaults.redact[0].detectors: name at least one detector"),
        ("[[defaults.redact]]\npaths = ['*']", "defaults.redact[0]: detectors is required"),
        ("[[defaults.redact]]\ndetectors = ['email']\npaths = ['inputs']", "defaults.redact[0].paths[0]"),
        ("[defaults]\nredact = 'email'", "defaults.redact: must be a list of tables"),
        (
            "[detectors]\nbad = 'C-(\\d{6}'",
            "detectors.bad: invalid regular expression: missing ), unterminated subpattern",
        ),
        ("[detectors]\nempty = 'x*'", 'detectors.empty: "x*" matches the empty string'),
        ("[detectors]\nemail = 'x'", "detectors.email: 'email' cannot name a detector"),
        ('[detectors]\n"a b" = "x"', "detectors.\"a b\": 'a b' cannot name a detector"),
        (
            '[systems.chatbot]\nretention = "30d"',
            'systems.chatbot.retention: retention "30d" is shorter than',
        ),
        ('[systems.chatbot]\nretention = "180d"', 'minimum_retention "6mo"'),
        (
            '[systems.x]\nminimum_retention = "2y"\n[defaults]\nretention = "400d"',
            "systems.x.minimum_retention",
        ),
        ('[defaults]\nminimum_retention = "3mo"', 'defaults.minimum_retention: "3mo" is shorter than 6mo'),
        (
            "[defaults]\nforce_short_retention = ''",
            "defaults.force_short_retention: must be a non-empty string",
        ),
        ("[[holds]]\nreason = 'r'", "holds[0]: name is required"),
        ("[[holds]]\nname = 'h'", "holds[0]: reason is required"),
        (
            "[[holds]]\nname = 'h'\nreason = 'r'\n[[holds]]\nname = 'h'\nreason = 's'",
            'holds[1].name: another hold is already called "h"',
        ),
        (
            "[[holds]]\nname = 'h'\nreason = 'r'\nfrom = 2026-07-01T00:00:00Z\nuntil = 2026-06-30T00:00:00Z",
            "holds[0]: from 2026-07-01T00:00:00Z is not before until 2026-06-30T00:00:00Z",
        ),
        (
            "[[holds]]\nname = 'h'\nreason = 'r'\nfrom = 2026-01-01T00:00:00",
            "holds[0].from: 2026-01-01T00:00:00 has no timezone",
        ),
        (
            "[[holds]]\nname = 'h'\nreason = 'r'\nuntil = 10:00:00",
            "holds[0].until: must be a date or a datetime",
        ),
        ("[[holds]]\nname = 'h'\nreason = 'r'\nsystem = 3", "holds[0].system: must be a non-empty string"),
        ("holds = 'x'", "holds: must be a list of tables"),
        ("systems = 3", "systems: must be a table"),
        ('[systems]\nx = "y"', "systems.x: must be a table"),
        ('[systems."a.b"]\nretention = "1d"', 'systems."a.b".retention'),
        ('[systems."*"]\nretention = "1y"', 'systems."*": "*" is reserved'),
    ],
)
def test_every_mistake_is_refused_with_file_key_and_reason(text: str, expected: str) -> None:
    """Each invalid policy is one line: the file, the key path, what is wrong (and how to fix it)."""
    assert expected in refused(text)


def test_short_retention_message_says_how_to_force_and_that_it_is_recorded() -> None:
    """The refusal names force_short_retention, the section to put it in, and that the force is recorded."""
    message = refused('[systems.chatbot]\nretention = "30d"')
    assert 'force_short_retention = "<why, and who approved it>" to [systems.chatbot]' in message
    assert "recorded in the log" in message
    assert "Art. 19" in message
    message = refused('[defaults]\nminimum_retention = "30d"')
    assert "refused unless forced" in message
    assert "[defaults]" in message


def test_a_short_minimum_is_allowed_only_with_a_force() -> None:
    """minimum_retention below 6mo passes with force_short_retention, and is then listed by forced()."""
    policy = parse(
        '[defaults]\nminimum_retention = "30d"\nretention = "30d"\nforce_short_retention = "trial"'
    )
    assert policy.forced() == [("*", "trial")]


def test_toml_syntax_errors_carry_line_and_column() -> None:
    """tomllib's position is in the one-line message; no traceback chained."""
    with pytest.raises(UsageError) as info:
        parse('[defaults]\nretention = "400d\n')
    assert str(info.value).startswith("inferlog.toml: not valid TOML: ")
    assert "line 2" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# -- holds ----------------------------------------------------------------------------------------


def test_hold_covers_system_subject_and_time_window() -> None:
    """A hold covers an entry only if system, subject and time all match; the end is exclusive."""
    hold = parse(EXAMPLE).holds[0]
    inside = dt.datetime(2026, 3, 1, tzinfo=UTC)
    assert hold.covers("credit-scoring", "customer-42", inside)
    assert not hold.covers("chatbot", "customer-42", inside)
    assert not hold.covers("credit-scoring", "customer-43", inside)
    assert not hold.covers("credit-scoring", None, inside)
    assert hold.covers("credit-scoring", "customer-42", dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert not hold.covers("credit-scoring", "customer-42", dt.datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    assert not hold.covers("credit-scoring", "customer-42", dt.datetime(2026, 6, 30, tzinfo=UTC))
    assert hold.applies_to("credit-scoring")
    assert not hold.blocks_system("credit-scoring")


def test_open_holds_dates_and_offsets() -> None:
    """No system = every system; a date ``until`` includes that day; offsets are converted to UTC."""
    policy = parse(
        "[[holds]]\nname = 'all'\nreason = 'regulator'\n"
        "[[holds]]\nname = 'q1'\nreason = 'audit'\nfrom = 2026-01-01\nuntil = 2026-03-31\n"
        "[[holds]]\nname = 'tz'\nreason = 'x'\nfrom = 2026-01-01T01:00:00+01:00\n"
    )
    everything, q1, tz = policy.holds
    assert everything.blocks_system("any")
    assert everything.covers("any", None, dt.datetime(1990, 1, 1, tzinfo=UTC))
    assert q1.start == dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert q1.end == dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert q1.covers("s", None, dt.datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert not q1.blocks_system("s")
    assert tz.start == dt.datetime(2026, 1, 1, tzinfo=UTC)


# -- normalized view and digest -----------------------------------------------------------------


def test_to_dict_is_json_ready_and_normalized() -> None:
    """Durations as canonical strings, holds with ISO times, keys sorted, paths deduplicated and sorted."""
    data = parse(EXAMPLE).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert list(data) == sorted(data)
    assert data["keystore"] == {"path": "keys.db"}
    assert data["defaults"]["retention"] == "400d"
    assert data["systems"]["credit-scoring"]["retention"] == "2y"
    assert data["systems"]["chatbot"]["force_short_retention"].startswith("DPIA")
    assert data["holds"] == [
        {
            "end": "2026-06-30T00:00:00Z", "name": "case-2026-17", "reason": "litigation",
            "start": "2026-01-01T00:00:00Z", "subject": "customer-42", "system": "credit-scoring",
        }
    ]  # fmt: skip
    assert data["detectors"] == {"customer_no": r"C-\d{6}"}


REORDERED = """
# the same policy: other order, other layout, other spellings of the same values
[[holds]]
until = 2026-06-30T02:00:00+02:00
from = 2026-01-01T00:00:00Z
subject = "customer-42"
system = "credit-scoring"
reason = "litigation"
name = "case-2026-17"

[systems.chatbot]
force_short_retention = "DPIA 2026-04: chat transcripts kept 30 days, approved by DPO"
retention = "30d"

[systems.credit-scoring]
redact = [{ paths = ["output", "input", "input"], detectors = ["customer_no", "email"] }]
encrypt = ["attributes.applicant", "output", "input"]
retention = "24mo"

[detectors]
customer_no = "C-\\\\d{6}"

[defaults]
redact = [{ detectors = ["card", "iban", "phone", "email"] }]
minimum_retention = "26w2d"
retention = "400d"
pseudonymize = ["subject"]
encrypt = ["output", "input"]

[keystore]
path = "keys.db"
"""


def test_digest_is_stable_under_reordering_and_layout() -> None:
    """Key order, whitespace, comments, inline tables and equivalent values do not change the digest."""
    original = parse(EXAMPLE)
    again = parse(REORDERED.replace('minimum_retention = "26w2d"', 'minimum_retention = "6mo"'))
    assert again.to_dict() == original.to_dict()
    assert again.digest == original.digest
    assert re.fullmatch(r"[0-9a-f]{64}", original.digest)


def test_digest_changes_when_the_policy_does() -> None:
    """Any change in meaning (a retention, a hold, a detector) changes the digest."""
    digest = parse(EXAMPLE).digest
    assert parse(EXAMPLE.replace('retention = "2y"', 'retention = "3y"')).digest != digest
    assert parse(EXAMPLE.replace('reason = "litigation"', 'reason = "audit"')).digest != digest
    assert parse(EXAMPLE.replace("C-\\d{6}", "C-\\d{7}")).digest != digest
    assert parse(REORDERED).digest != digest  # 26w2d is 184 days, not 6 months
