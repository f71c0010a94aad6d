"""Redaction: each detector finds what it should and nothing that only looks alike; the Redactor is a
safe, idempotent Processor."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferlog.errors import UsageError
from inferlog.privacy.redact import BUILTIN_DETECTORS, Redactor, RedactRule, iban_ok, luhn_ok, redact_text
from inferlog.record.model import Sealed
from tests.privacy.entries import error, feedback, inference, snapshot


def redact(text: str, *names: str) -> tuple[str, dict[str, int]]:
    counts: dict[str, int] = {}
    detectors = [d for name, d in BUILTIN_DETECTORS.items() if not names or name in names]
    return redact_text(text, detectors, counts), counts


# -- e-mail -------------------------------------------------------------------------------------

EMAILS = [
    "alice@example.com",
    "bob.smith+tag@mail.example.co.uk",
    "first_last-99@sub.domain.org",
    "UPPER@EXAMPLE.COM",
    "jörg@beispiel.de",
    "o'brien@x.ie",  # the apostrophe ends the word: o'[brien@x.ie] is still redacted
]


@pytest.mark.parametrize("email", EMAILS)
def test_email_is_found_in_a_sentence(email: str) -> None:
    """An address inside prose becomes one email mask."""
    text, counts = redact(f"Contact: {email}, thanks.", "email")
    assert email.split("'")[-1] not in text
    assert counts == {"email": 1}
    assert "[REDACTED:email]" in text


@pytest.mark.parametrize(
    "text", ["a@b", "user@localhost", "x@y.c", "@example.com", "name@", "2 @ 3", "a @b.com"]
)
def test_email_lookalikes_are_left_alone(text: str) -> None:
    """No domain, no TLD, no local part, or spaces: not an address."""
    assert redact(text, "email") == (text, {})


def test_phone_followed_by_a_small_number_is_still_found() -> None:
    """ "030 1234567 3 times": the trailing number is cut off again, not the reason to give up."""
    assert redact("call 030 1234567 3 times", "phone") == ("call [REDACTED:phone] 3 times", {"phone": 1})


def test_email_in_a_url_with_credentials_and_at_a_sentence_end() -> None:
    """user:pass@host gives up the part that is shaped like an address; a final dot stays prose."""
    assert redact("https://u:pw@host.example.org/x", "email")[0] == "https://u:[REDACTED:email]/x"
    assert redact("write to ann@example.com.", "email")[0] == "write to [REDACTED:email]."


# -- phone --------------------------------------------------------------------------------------

PHONES = [
    "+49 30 1234567",
    "+1-555-123-4567",
    "+1 (555) 123-4567",
    "+44 (0)20 7946 0958",
    "+33 1 23 45 67 89",
    "+49.30.1234567",
    "+4915112345678",
    "030 1234567",
    "(030) 1234567",
    "(555) 123-4567",
    "555-123-4567",
    "555.123.4567",
    "555-1234",
    "0171 1234567",
    "06 12 34 56 78",
    "06.12.34.56.78",
    "0800 123 4567",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_is_found(phone: str) -> None:
    """International +CC forms and national forms with separators are one phone mask."""
    assert redact(phone, "phone") == ("[REDACTED:phone]", {"phone": 1})
    assert redact(f"Call me at {phone}.", "phone") == ("Call me at [REDACTED:phone].", {"phone": 1})


NOT_PHONES = [
    "2026-04-01",
    "01.04.2026",
    "2026/04/01",
    "2026-04-01T12:30:45Z",
    "2026-04-01 12:30:45.123456+02:00",
    "12:30:45",
    "3.14159",
    "1234567.89",
    "12 345 678.90",
    "-1234567.5",
    "1.2345678901234567e+16",
    "1.2.3",
    "10.11.123",
    "10.0.19041.1",
    "v1.2.3456789",
    "550e8400-e29b-41d4-a716-446655440000",
    "12345678-1234-1234-1234-123456789012",
    "12345",
    "1234567",
    "12345678901",
    "192.168.100.200",
    "1990-2020",
    "12 345 678",
    "1.234.567",
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "BE68 5390 0754 7034",
    "NO93 8601 1117 947",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "378282246310005",
    "3782 822463 10005",
    "order-1234567",
    "id_555-123-4567",
]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_phone_lookalikes_are_left_alone(text: str) -> None:
    """Dates, times, decimals, versions, UUIDs, plain numbers, IPs, IBANs and card numbers are not phones."""
    assert redact(text, "phone") == (text, {})
    assert redact(f"value: {text} end", "phone") == (f"value: {text} end", {})


@given(st.datetimes(timezones=st.timezones() | st.none()), st.sampled_from(["T", " "]))
def test_no_iso_timestamp_is_a_phone(when: dt.datetime, sep: str) -> None:
    """Whatever the date, time, fraction and offset, an ISO 8601 timestamp keeps all its digits."""
    text = when.isoformat(sep)
    assert redact(text, "phone") == (text, {})
    assert redact(when.date().isoformat(), "phone")[1] == {}


@given(st.uuids())
def test_no_uuid_is_a_phone(value: object) -> None:
    """UUIDs (hex groups joined by dashes) never offer a phone candidate."""
    assert redact(str(value), "phone")[1] == {}


@given(st.floats(allow_nan=False, allow_infinity=False) | st.decimals(allow_nan=False, allow_infinity=False))
def test_no_number_is_a_phone(value: object) -> None:
    """Floats and decimals as Python writes them are not phones."""
    assert redact(str(value), "phone")[1] == {}


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 999))
def test_no_version_is_a_phone(major: int, minor: int, patch: int) -> None:
    """Semantic versions are not phones."""
    assert redact(f"{major}.{minor}.{patch}", "phone")[1] == {}
    assert redact(f"v{major}.{minor}.{patch}", "phone")[1] == {}


# -- IBAN -----------------------------------------------------------------------------------------

IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "GB82WEST12345698765432",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91 ABNA 0417 1643 00",
    "BE68 5390 0754 7034",
    "NO93 8601 1117 947",
    "de89 3704 0044 0532 0130 00",
]


@pytest.mark.parametrize("iban", IBANS)
def test_iban_is_found(iban: str) -> None:
    """Valid IBANs, grouped or not, any country length, become one iban mask."""
    assert iban_ok(iban)
    assert redact(iban, "iban") == ("[REDACTED:iban]", {"iban": 1})
    assert redact(f"IBAN: {iban}.", "iban") == ("IBAN: [REDACTED:iban].", {"iban": 1})


@pytest.mark.parametrize(
    "text",
    [
        "DE88 3704 0044 0532 0130 00",  # wrong check digits
        "DE89 3704 0044 0532 0130 01",  # one digit off
        "GB82 WEST 1234 5698 7654 33",
        "DE89 3704",  # too short
        "XX00 0000 0000 0000",
        "ab12cdefghijklmnopqrstuvwxyz0123456789",  # glued into a longer word
    ],
)
def test_iban_with_a_failing_check_is_left_alone(text: str) -> None:
    """Only the ISO 7064 mod-97 check decides: a wrong check digit is not an IBAN."""
    assert redact(text, "iban") == (text, {})


def test_iban_followed_by_a_four_letter_word_is_still_found() -> None:
    """A word that looks like another group is cut off again when the whole fails the check."""
    assert redact("BE68 5390 0754 7034 Test", "iban") == ("[REDACTED:iban] Test", {"iban": 1})


# -- card ---------------------------------------------------------------------------------------

CARDS = [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "5500-0000-0000-0004",
    "5500 0000 0000 0004",
    "378282246310005",
    "3782 822463 10005",
    "6011 1111 1111 1117",
    "30569309025904",
]


@pytest.mark.parametrize("card", CARDS)
def test_card_is_found(card: str) -> None:
    """Luhn-valid 13–19 digit numbers, plain or grouped by spaces or dashes, become one card mask."""
    assert luhn_ok(card.replace(" ", "").replace("-", ""))
    assert redact(card, "card") == ("[REDACTED:card]", {"card": 1})
    assert redact(f"paid with {card}, ok", "card") == ("paid with [REDACTED:card], ok", {"card": 1})


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn-invalid
        "4111111111111112",
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits
        "1234.5678.9012.3456",  # dots do not group card numbers
        "order-4111111111111111",  # glued to a word
        "4111111111111111.5",  # a decimal
    ],
)
def test_card_lookalikes_are_left_alone(text: str) -> None:
    """A Luhn-invalid number, wrong lengths and numbers glued to more digits are untouched."""
    assert redact(text, "card") == (text, {})


def test_card_followed_by_a_number_is_still_found() -> None:
    """ "4111 1111 1111 1111 2026": the year is cut off again because the whole fails Luhn."""
    assert redact("4111 1111 1111 1111 2026", "card") == ("[REDACTED:card] 2026", {"card": 1})


# -- several detectors, masks -----------------------------------------------------------------


def test_everything_in_one_text_gets_its_own_typed_mask() -> None:
    """All four kinds in one string, each counted."""
    text = (
        "Ann <ann@example.com>, +49 30 1234567, IBAN DE89 3704 0044 0532 0130 00, "
        "card 4111 1111 1111 1111, born 1990-01-02, score 0.81"
    )
    new, counts = redact(text)
    assert new == (
        "Ann <[REDACTED:email]>, [REDACTED:phone], IBAN [REDACTED:iban], "
        "card [REDACTED:card], born 1990-01-02, score 0.81"
    )
    assert counts == {"email": 1, "phone": 1, "iban": 1, "card": 1}


def test_nothing_to_find_returns_the_same_string() -> None:
    """No find: the very same object (which is how Selector knows nothing changed)."""
    text = "the model said no, score 0.81 on 2026-04-01"
    assert redact(text)[0] is text


# -- the Redactor ----------------------------------------------------------------------------

EVERYTHING = [RedactRule(("email", "phone", "iban", "card"))]


def test_nested_json_in_input_and_output_is_redacted() -> None:
    """Strings deep in dicts and lists of input and output are redacted; numbers and keys stay."""
    entry = inference(
        input={"messages": [{"role": "user", "content": "I am ann@example.com"}], "n": 5551234567},
        output=[{"text": "We will call +1-555-123-4567"}, 0.9],
    )
    new = Redactor(EVERYTHING)(entry)
    assert new.input == {"messages": [{"role": "user", "content": "I am [REDACTED:email]"}], "n": 5551234567}
    assert new.output == [{"text": "We will call [REDACTED:phone]"}, 0.9]
    assert new.attributes == {"redacted": {"email": 1, "phone": 1}}


def test_paths_limit_where_redaction_happens() -> None:
    """A rule on ``input`` leaves the output alone; a rule on ``*`` covers every payload field."""
    entry = inference(input="ann@example.com", output="bob@example.com", subject="c@example.com")
    only_input = Redactor([RedactRule(("email",), ("input",))])(entry)
    assert (only_input.input, only_input.output, only_input.subject) == (
        "[REDACTED:email]", "bob@example.com", "c@example.com",
    )  # fmt: skip
    everywhere = Redactor([RedactRule(("email",))])(entry)
    assert (everywhere.input, everywhere.output, everywhere.subject) == ("[REDACTED:email]",) * 3
    assert everywhere.attributes["redacted"] == {"email": 3}


def test_rules_combine_detectors_per_path() -> None:
    """Two rules: email everywhere, phone only in the output."""
    entry = inference(input="ann@example.com 030 1234567", output="ann@example.com 030 1234567")
    new = Redactor([RedactRule(("email",)), RedactRule(("phone",), ("output",))])(entry)
    assert new.input == "[REDACTED:email] 030 1234567"
    assert new.output == "[REDACTED:email] [REDACTED:phone]"
    assert new.attributes["redacted"] == {"email": 2, "phone": 1}


def test_error_messages_comments_and_feedback_are_covered_by_star() -> None:
    """A failed inference's message and a reviewer's comment are payload too."""
    failed = Redactor(EVERYTHING)(inference(error=error("no account for ann@example.com"), status="error"))
    assert failed.error is not None
    assert failed.error.message == "no account for [REDACTED:email]"
    reviewed = Redactor(EVERYTHING)(
        feedback(comment="called 030 1234567", label={"contact": "x@example.org"})
    )
    assert (reviewed.comment, reviewed.label) == ("called [REDACTED:phone]", {"contact": "[REDACTED:email]"})


def test_custom_detectors_by_name() -> None:
    """A policy's regexes run by name, with their own mask, before the built-ins."""
    redactor = Redactor(
        [RedactRule(("customer_no", "email"))], {"customer_no": r"C-\d{6}", "ticket": re.compile(r"T#\d+")}
    )
    new = redactor(inference(input="C-123456 wrote from a@example.com about T#9"))
    assert new.input == "[REDACTED:customer_no] wrote from [REDACTED:email] about T#9"
    assert new.attributes["redacted"] == {"customer_no": 1, "email": 1}


def test_a_custom_regex_that_matches_masks_does_not_break_idempotence() -> None:
    """Masks are never scanned, even by a custom regex that would match their text."""
    redactor = Redactor([RedactRule(("caps", "email"))], {"caps": r"[A-Z]{3,}"})
    once = redactor(inference(input="SECRET to ann@example.com"))
    assert once.input == "[REDACTED:caps] to [REDACTED:email]"
    assert redactor(once) is once


def test_redacting_twice_is_the_same_as_once() -> None:
    """The second run finds nothing, changes nothing (not even the counts) and returns the same entry."""
    entry = inference(
        input={"t": "ann@example.com, DE89 3704 0044 0532 0130 00, 4111 1111 1111 1111, 030 1234567"}
    )
    once = Redactor(EVERYTHING)(entry)
    twice = Redactor(EVERYTHING)(once)
    assert twice is once
    assert once.attributes["redacted"] == {"email": 1, "iban": 1, "card": 1, "phone": 1}


def test_existing_counts_are_added_to_and_other_attributes_kept() -> None:
    """Counts from an earlier redaction (say, in the SDK) are added to, other attributes kept."""
    entry = inference(
        input="ann@example.com", attributes={"endpoint": "/score", "redacted": {"email": 2, "card": 1}}
    )
    new = Redactor(EVERYTHING)(entry)
    assert new.attributes == {"endpoint": "/score", "redacted": {"email": 3, "card": 1}}
    assert entry.attributes == {"endpoint": "/score", "redacted": {"email": 2, "card": 1}}


def test_input_entry_is_unchanged_and_clean_entries_come_back_as_is() -> None:
    """Redaction copies what it changes; an entry with nothing to find is returned as the same object."""
    entry = inference(input={"text": "mail ann@example.com"}, output={"score": 0.81})
    before = snapshot(entry)
    new = Redactor(EVERYTHING)(entry)
    assert snapshot(entry) == before
    assert new is not entry
    assert new.output is entry.output
    clean = inference(input={"income": 52000, "age": 41}, output={"score": 0.81, "label": "approve"})
    assert Redactor(EVERYTHING)(clean) is clean
    assert Redactor([])(clean) is clean


def test_sealed_entries_are_left_alone() -> None:
    """An entry sealed at the edge was redacted before sealing: its ciphertext is never scanned again."""
    sealed = Sealed(fields=["input"], kc=b"k" * 32, epoch="epoch:s:2026-04")
    entry = inference(input="ilenc1:QUJDREVGR0g=", output="ann@example.com", sealed=sealed)
    assert Redactor([RedactRule(("caps", "email"))], {"caps": "[A-Z]{3,}"})(entry) is entry


def test_unknown_detectors_and_bad_names_are_refused() -> None:
    """A rule naming a detector nobody defined, or a custom name a mask cannot carry, is a UsageError."""
    with pytest.raises(UsageError, match="unknown detector 'emial'"):
        Redactor([RedactRule(("emial",))])
    with pytest.raises(UsageError, match="cannot name a detector"):
        Redactor([RedactRule(("x y",))], {"x y": "a"})
    with pytest.raises(UsageError, match="cannot name a detector"):
        Redactor([RedactRule(("email",))], {"email": "a"})


def test_checksums() -> None:
    """Luhn and mod-97 on known-good and known-bad numbers."""
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert luhn_ok("79927398713")
    assert iban_ok("GB82WEST12345698765432")
    assert not iban_ok("GB82WEST12345698765433")
    assert not iban_ok("GB82")


# -- properties -----------------------------------------------------------------------------------

FRAGMENTS = [
    "ann@example.com", "+49 30 1234567", "030 1234567", "(555) 123-4567", "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32", "4111 1111 1111 1111", "378282246310005", "2026-04-01", "1.2.3", " ", "-",
    ".", "@", "(", ")", "+", "0", "7", "[REDACTED:email]", "[REDACTED:", "]", "C-123456", "x",
]  # fmt: skip
texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), max_size=8).map("".join)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values, texts)
def test_redaction_never_raises_and_is_idempotent(input: Any, output: Any, comment: str) -> None:
    """On arbitrary JSON built from PII fragments and noise: no exception, the input is untouched, twice = once."""
    redactor = Redactor(
        [RedactRule(("customer_no", "email", "phone", "iban", "card"))], {"customer_no": r"C-\d{6}"}
    )
    entry = inference(input=input, output=output, actor=comment)
    before = snapshot(entry)
    once = redactor(entry)
    assert snapshot(entry) == before
    assert redactor(once) is once
