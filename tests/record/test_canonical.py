"""Canonical bytes: RFC 8785, checked against the reference implementation."""

from __future__ import annotations

import datetime as dt

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from inferlog.errors import RecordInvalid
from inferlog.record.canonical import canonicalize, format_number, format_timestamp

SAFE_INT = 2**53 - 1
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@given(json_values)
def test_matches_reference_implementation(value: object) -> None:
    """For any JSON value in the I-JSON range our bytes equal the reference RFC 8785 output."""
    assert canonicalize(value) == rfc8785.dumps(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_match_ecmascript(value: float) -> None:
    """Every finite float is written as ECMAScript's Number.prototype.toString writes it."""
    assert format_number(value).encode() == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (1.5e-5, "0.000015"),
        (-0.0, "0"),
        (1e16, "10000000000000000"),
    ],
)
def test_number_edge_cases(value: float, expected: str) -> None:
    """The boundaries where Python's repr and ECMAScript disagree are written the ECMAScript way."""
    assert format_number(value) == expected


def test_keys_sort_by_utf16_code_units() -> None:
    """A key outside the BMP sorts before U+E000..U+FFFF, as UTF-16 surrogates do."""
    assert canonicalize({"\ue000": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_big_integers_keep_all_digits() -> None:
    """Integers beyond 2**53 are written exactly (our documented extension), not rounded."""
    assert canonicalize({"id": 2**64 + 1}) == b'{"id":18446744073709551617}'


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": {"b": [1, object()]}}, "a.b[1]"),
        ({"k": object()}, "k"),
        ({1: "non-string key"}, None),
    ],
)
def test_refusals_name_the_path(value: object, field: str | None) -> None:
    """Values JSON cannot carry are refused with the JSON path of the bad value."""
    with pytest.raises(RecordInvalid) as info:
        canonicalize(value)
    assert info.value.field == field


def test_lone_surrogate_is_refused() -> None:
    """A lone surrogate cannot be encoded as UTF-8 and is refused, not mangled."""
    with pytest.raises(RecordInvalid, match="surrogate"):
        canonicalize({"a": "\ud800"})


def test_timestamps_have_one_spelling() -> None:
    """The same instant in two time zones gives the same UTC string with microseconds."""
    utc = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    cet = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert format_timestamp(utc) == format_timestamp(cet) == "2026-01-02T03:04:05.000000Z"
    with pytest.raises(RecordInvalid, match="timezone"):
        format_timestamp(dt.datetime(2026, 1, 2))  # noqa: DTZ001 - the point of the test


def test_non_finite_numbers_become_strings() -> None:
    """NaN and infinities (missing features, overflow) are kept as strings rather than refusing the record."""
    value = {"x": [float("nan"), float("inf"), -float("inf"), 1.5]}
    assert canonicalize(value) == b'{"x":["NaN","Infinity","-Infinity",1.5]}'


def test_timestamps_of_early_years_are_rfc3339() -> None:
    """Year 999 is written with four digits (strftime would not), so it reads back as a timestamp."""
    assert format_timestamp(dt.datetime(999, 1, 2, tzinfo=dt.UTC)) == "0999-01-02T00:00:00.000000Z"
    near_min = dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(RecordInvalid, match="out of range"):
        format_timestamp(near_min)
