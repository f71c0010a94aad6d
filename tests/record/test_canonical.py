"""Canonical bytes: RFC 8785, checked against the reference implementation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from inferlog.errors import RecordInvalid
from inferlog.record.canonical import canonical_json, canonicalize, format_number, format_timestamp

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
def test_matches_reference_implementation(value: Any) -> None:
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
    assert format_timestamp(utc) == format_timestamp(cet) == "2026-01-02T03:04:05Z"
    assert format_timestamp(utc.replace(microsecond=120)) == "2026-01-02T03:04:05.000120Z"
    with pytest.raises(RecordInvalid, match="timezone"):
        format_timestamp(dt.datetime(2026, 1, 2))  # noqa: DTZ001 - the point of the test


def test_non_finite_numbers_become_null() -> None:
    """NaN and infinities (missing features, overflow) become null, as JSON.stringify does, instead of refusing the record."""
    value = {"x": [float("nan"), float("inf"), -float("inf"), 1.5]}
    assert canonicalize(value) == canonical_json(value) == b'{"x":[null,null,null,1.5]}'


AWKWARD_NUMBERS = [1.0, -0.0, 1e16, 1.5e17, 1e21, 2.5e300, 1e40, 123.0, 5e-324, 1e-7, 4.1e-6, 9.99e-6]
AWKWARD_TEXT = ["1e40", "x:1.0,", ":1.0]", 'a"b\\c', '\\"', "\\", "e5,", 'a\\"b:2.0,', 'k"']
any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(AWKWARD_NUMBERS)
    | st.text()
    | st.sampled_from(AWKWARD_TEXT),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text() | st.sampled_from(AWKWARD_TEXT), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500)
@given(any_json)
def test_fast_encoder_equals_the_exact_one(value: object) -> None:
    """The msgspec-based fast path gives the same bytes as the exact encoder, for any JSON value."""
    try:
        expected = canonicalize(value)
    except RecordInvalid:
        return  # lone surrogates: the fast path must refuse too, or fall back and refuse
    assert canonical_json(value) == expected


@given(json_values)
def test_fast_encoder_matches_reference(value: Any) -> None:
    """The fast path is RFC 8785 byte for byte in the I-JSON range."""
    assert canonical_json(value) == rfc8785.dumps(value)


def test_fast_encoder_handles_structs_and_datetimes() -> None:
    """An entry Struct encodes to the same bytes as its builtins through the exact encoder."""
    import msgspec

    from inferlog.testing import make_record

    for us in (0, 7):
        record = make_record(
            ts=dt.datetime(2026, 1, 2, 3, 4, 5, us, tzinfo=dt.UTC), input={"x": 1.0, "y": -0.0}
        )
        builtins = msgspec.to_builtins(record, builtin_types=(dt.datetime,))
        assert canonical_json(record) == canonicalize(builtins)


def test_timestamps_of_early_years_are_rfc3339() -> None:
    """Year 999 is written with four digits (strftime would not), so it reads back as a timestamp."""
    assert format_timestamp(dt.datetime(999, 1, 2, tzinfo=dt.UTC)) == "0999-01-02T00:00:00Z"
    near_min = dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(RecordInvalid, match="out of range"):
        format_timestamp(near_min)


def test_datetimes_are_written_in_utc_by_both_encoders() -> None:
    """A datetime with a UTC offset is written as UTC ("Z"), by the fast and the exact encoder alike."""
    cet = dt.timezone(dt.timedelta(hours=2))
    value = {"when": dt.datetime(2026, 5, 1, 12, 0, tzinfo=cet), "naive": dt.datetime(2026, 5, 1, 12, 0)}  # noqa: DTZ001
    expected = b'{"naive":"2026-05-01T12:00:00","when":"2026-05-01T10:00:00Z"}'
    assert canonical_json(value) == canonicalize(value) == expected


# The fast path repairs msgspec's numbers outside strings only, in whole-text passes. These
# generators aim at what that could get wrong: many integral floats side by side in lists and
# objects, the exponent boundaries, and strings (values and keys) that look like JSON numbers,
# punctuation, quotes and escapes, so that a repair landing inside a string would show.
INTEGRAL_FLOATS = st.integers(min_value=-(2**53), max_value=2**53).map(float) | st.sampled_from(
    [0.0, -0.0, 1.0, 3.0, 5.0, -2.0, 10.0, 52000.0, 1e15, -9e15, 9007199254740992.0]
)
EXPONENT_FLOATS = (
    st.sampled_from([1e16, -1e16, 1.5e17, 1e20, 1e21, -1e21, 1.2e21, 1e22, 1.7976931348623157e308, 5e-324])
    | st.sampled_from([1e-5, 1e-6, -1e-6, 4.1e-6, 9.99e-6, 1e-7, 1.5e-7, -2.5e-9, 1e-300])
    | st.floats(min_value=1e-8, max_value=2e-5)
    | st.floats(min_value=1e15, max_value=1e23)
)
NUMBER_LIKE_TEXT = (
    st.sampled_from(["a:3.0,", "3.0", "-0.0}", ":1.0]", "[5.0,", "1e16,", "x:1e21]", "e-6,", "4.1e-6}"])
    | st.sampled_from(['"":1.0,', '""', '\\"1.0]', '\\\\"', 'a\\\\":2.0,', "\\", '"', '",3.0,"'])
    | st.sampled_from(["é:1.0,", "\u2028-0.0]", "\U0001f600:2.0,"])
    | st.text(alphabet='0123456789.-+eE,:[]{}"\\ é', max_size=12)
)
repair_scalars = (
    INTEGRAL_FLOATS
    | EXPONENT_FLOATS
    | NUMBER_LIKE_TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.booleans()
    | st.none()
)
repair_values = st.recursive(
    repair_scalars,
    lambda children: (
        st.lists(children, max_size=8)
        | st.dictionaries(NUMBER_LIKE_TEXT | st.text(max_size=4), children, max_size=6)
    ),
    max_leaves=40,
)
tensors = st.lists(st.lists(INTEGRAL_FLOATS | EXPONENT_FLOATS | st.floats(0, 8), min_size=4, max_size=4))


@settings(max_examples=600)
@given(repair_values)
def test_number_repairs_never_touch_strings(value: Any) -> None:
    """Integral floats and exponents are respelled where they are numbers, never inside a string."""
    assert canonical_json(value) == canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=200)
@given(tensors, NUMBER_LIKE_TEXT)
def test_tensors_of_integral_floats_match_reference(rows: list[list[float]], name: str) -> None:
    """An Open Inference Protocol tensor, as the proxy records it, is RFC 8785 byte for byte."""
    tensor = {"name": name, "shape": [len(rows), 4], "datatype": "FP64", "data": rows}
    value: Any = {"inputs": [tensor]}
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=300)
@given(st.recursive(st.floats() | NUMBER_LIKE_TEXT | st.integers(), lambda c: st.lists(c, max_size=6)))
def test_fast_encoder_repairs_beyond_the_reference_range(value: object) -> None:
    """With NaN, infinities and big integers (our extensions) the fast path still equals the exact one."""
    try:
        expected = canonicalize(value)
    except RecordInvalid:
        return  # lone surrogates
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3.0, b"3"),
        (-0.0, b"0"),
        (1e16, b"10000000000000000"),
        (1e21, b"1e+21"),
        (1.5e-7, b"1.5e-7"),
        (4.1e-6, b"0.0000041"),
        ([-0.0, 0.0, -10.0, 10.0, 1.05, -1e21], b"[0,0,-10,10,1.05,-1e+21]"),
        ({"a:3.0,": 3.0, "b": "x:1.0]"}, b'{"a:3.0,":3,"b":"x:1.0]"}'),
        (['\\"', 2.0, '"', 1e16], b'["\\\\\\"",2,"\\"",10000000000000000]'),
        ({"k": ["e-6,", 4.1e-6, "1e21}"]}, b'{"k":["e-6,",0.0000041,"1e21}"]}'),
        ({"é": [5.0, {"\\": -0.0}]}, '{"é":[5,{"\\\\":0}]}'.encode()),
        ([float("nan"), 1.0, float("inf"), -1e21], b"[null,1,null,-1e+21]"),
        ({"big": 2**64 + 1, "f": 2.0}, b'{"big":18446744073709551617,"f":2}'),
    ],
)
def test_fast_encoder_number_repairs(value: object, expected: bytes) -> None:
    """Hand-picked cases: top-level numbers, signs, exponent boundaries, look-alike strings, escapes."""
    assert canonical_json(value) == canonicalize(value) == expected


def test_iris_tensor_record_matches_exact_encoder() -> None:
    """A record holding an iris tensor (integral floats among others) gives the exact encoder's bytes."""
    import msgspec

    from inferlog.testing import make_record

    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.0, 3.0, 1.0, -0.0]] * 300
    tensor = {"name": 'x"1.0,', "shape": [len(rows), 4], "datatype": "FP64", "data": rows}
    record = make_record(input={"id": "a:3.0,", "inputs": [tensor]})
    builtins = msgspec.to_builtins(record, builtin_types=(dt.datetime,))
    assert canonical_json(record) == canonicalize(builtins)
