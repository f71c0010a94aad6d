"""Durations: parsing, calendar arithmetic around month ends and leap years, and ordering by length."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferlog.privacy.policy import FLOOR, Duration

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "months", "days", "canonical"),
    [
        ("400d", 0, 400, "400d"),
        ("2w", 0, 14, "14d"),
        ("6mo", 6, 0, "6mo"),
        ("18mo", 18, 0, "18mo"),
        ("2y", 24, 0, "2y"),
        ("1y6mo", 18, 0, "18mo"),
        ("12mo", 12, 0, "1y"),
        ("1y2w3d", 12, 17, "1y17d"),
        ("0y30d", 0, 30, "30d"),
    ],
)
def test_parse_and_canonical_text(text: str, months: int, days: int, canonical: str) -> None:
    """Units y, mo, w, d, alone or combined in that order; str() is the canonical form."""
    duration = Duration.parse(text)
    assert (duration.months, duration.days) == (months, days)
    assert str(duration) == canonical
    assert Duration.parse(str(duration)) == duration


@pytest.mark.parametrize(
    "text", ["", "3x", "400", "d", "6 mo", "6m", "1.5y", "-3d", "6mo1y", "2y2y", "0d", "0y0mo", "6MO"]
)
def test_bad_durations_are_refused(text: str) -> None:
    """Anything else, zero and wrong order included, is a ValueError with a hint."""
    with pytest.raises(ValueError, match="duration"):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("6mo", dt.datetime(2026, 8, 31, 10, 0, tzinfo=UTC), dt.datetime(2026, 2, 28, 10, 0, tzinfo=UTC)),
        ("6mo", dt.datetime(2024, 8, 31, 10, 0, tzinfo=UTC), dt.datetime(2024, 2, 29, 10, 0, tzinfo=UTC)),
        ("1mo", dt.datetime(2026, 3, 31, tzinfo=UTC), dt.datetime(2026, 2, 28, tzinfo=UTC)),
        ("1mo", dt.datetime(2026, 1, 15, tzinfo=UTC), dt.datetime(2025, 12, 15, tzinfo=UTC)),
        ("1y", dt.datetime(2024, 2, 29, tzinfo=UTC), dt.datetime(2023, 2, 28, tzinfo=UTC)),
        ("4y", dt.datetime(2028, 2, 29, tzinfo=UTC), dt.datetime(2024, 2, 29, tzinfo=UTC)),
        ("1d", dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 2, 29, tzinfo=UTC)),
        ("1d", dt.datetime(2023, 3, 1, tzinfo=UTC), dt.datetime(2023, 2, 28, tzinfo=UTC)),
        ("400d", dt.datetime(2026, 4, 1, tzinfo=UTC), dt.datetime(2025, 2, 25, tzinfo=UTC)),
        ("1mo1d", dt.datetime(2026, 3, 31, tzinfo=UTC), dt.datetime(2026, 2, 27, tzinfo=UTC)),
        ("13mo", dt.datetime(2026, 1, 31, tzinfo=UTC), dt.datetime(2024, 12, 31, tzinfo=UTC)),
    ],
)
def test_before_moves_the_calendar(text: str, now: dt.datetime, expected: dt.datetime) -> None:
    """Months move the calendar month (clamping the day to its end), then days are subtracted."""
    assert Duration.parse(text).before(now) == expected


def test_before_keeps_the_timezone_and_clamps_at_year_one() -> None:
    """The result keeps tzinfo; periods reaching before year 1 give datetime.min."""
    now = dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert Duration.parse("6mo").before(now).tzinfo is UTC
    assert Duration.parse("999999y").before(now) == dt.datetime.min.replace(tzinfo=UTC)
    assert Duration.parse("999999d").before(now) == dt.datetime.min.replace(tzinfo=UTC)


@given(
    st.datetimes(min_value=dt.datetime(1000, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001 - hypothesis bounds are naive
    st.integers(0, 600),
    st.integers(0, 999),
)
def test_before_is_never_after_now_and_never_further_back_than_whole_months(
    now: dt.datetime, months: int, days: int
) -> None:
    """``before`` lands in the month N back (clamped), at most ``days`` more; never after ``now``."""
    if not months and not days:
        return
    result = Duration(months, days).before(now)
    assert result <= now
    back = Duration(months, 0).before(now)
    assert (now.year * 12 + now.month) - (back.year * 12 + back.month) == months
    assert back - result == dt.timedelta(days=days)


def test_ordering_against_the_six_month_floor() -> None:
    """ "6mo" meets a 6mo minimum, "180d" and "26w" do not, "183d" does (a month is 30.436875 days)."""
    six = Duration.parse("6mo")
    assert not six < FLOOR
    assert six == FLOOR
    assert Duration.parse("180d") < FLOOR
    assert Duration.parse("26w") < FLOOR
    assert Duration.parse("183d") > FLOOR
    assert Duration.parse("1y") == Duration.parse("12mo")
    assert Duration.parse("1y") < Duration.parse("366d")
    assert Duration.parse("1y") > Duration.parse("365d")
    assert sorted(map(Duration.parse, ["2y", "30d", "6mo", "183d", "1y"])) == list(
        map(Duration.parse, ["30d", "6mo", "183d", "1y", "2y"])
    )
