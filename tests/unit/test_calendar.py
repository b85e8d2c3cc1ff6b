"""Tests for shared.calendar: legal periods over Chinese holidays and adjusted working days."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import (
    TZ,
    Period,
    deadline,
    format_local,
    is_overdue,
    is_working_day,
    time_left,
    to_local,
)


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=TZ)


def end_of(y: int, m: int, d: int) -> datetime:
    """23:59:59 Asia/Shanghai on the given day, as UTC (what deadline() returns)."""
    return local(y, m, d, 23, 59, 59).astimezone(UTC)


def assert_utc(dt: datetime) -> None:
    assert dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


# --- calendar days ----------------------------------------------------------------------

def test_days_last_day_in_spring_festival_moves_to_first_working_day_after() -> None:
    # Thu 2026-02-12: start day not counted; last day Sun 2026-02-15 is in the
    # Spring Festival holiday (02-15..02-23), so the period ends Tue 2026-02-24.
    result = deadline(local(2026, 2, 12, 10), Period(3, "days"))
    assert result == end_of(2026, 2, 24)
    assert format_local(result) == "2026-02-24T23:59:59+08:00"
    assert result == datetime(2026, 2, 24, 15, 59, 59, tzinfo=UTC)
    assert_utc(result)


def test_days_last_day_on_adjusted_working_saturday_is_kept() -> None:
    # Sat 2026-02-14 is an adjusted working day (调休上班).
    assert date(2026, 2, 14).weekday() == 5
    assert deadline(local(2026, 2, 11, 9, 30), "3d") == end_of(2026, 2, 14)


def test_days_last_day_on_ordinary_saturday_moves_to_monday() -> None:
    # Wed 2026-03-04 + 3 days = Sat 2026-03-07 -> Mon 2026-03-09.
    assert date(2026, 3, 7).weekday() == 5
    assert deadline(local(2026, 3, 4, 15), "3d") == end_of(2026, 3, 9)


def test_days_last_day_on_working_day_is_not_moved() -> None:
    # Mon 2026-03-02 + 3 days = Thu 2026-03-05.
    assert deadline(local(2026, 3, 2, 8), "3d") == end_of(2026, 3, 5)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # 23:30 local Thu 03-05 is 15:30 UTC: the start day is not counted even late at night.
        (local(2026, 3, 5, 23, 30), end_of(2026, 3, 6)),
        # 00:30 local Thu 03-05 is Wed 03-04 16:30 UTC: the local date (Thu) is what counts.
        (datetime(2026, 3, 4, 16, 30, tzinfo=UTC), end_of(2026, 3, 6)),
        # 23:30 UTC Wed 03-04 is already Thu 03-05 07:30 local.
        (datetime(2026, 3, 4, 23, 30, tzinfo=UTC), end_of(2026, 3, 6)),
        # A start in another zone: 2026-03-04 12:30 New York is Thu 03-05 01:30 local.
        (datetime(2026, 3, 4, 12, 30, tzinfo=ZoneInfo("America/New_York")), end_of(2026, 3, 6)),
        # Control: 22:00 local Wed 03-04 -> Thu 03-05.
        (local(2026, 3, 4, 22), end_of(2026, 3, 5)),
    ],
)
def test_days_count_from_local_date(start: datetime, expected: datetime) -> None:
    assert deadline(start, "1d") == expected


def test_national_day_2026() -> None:
    # Tue 2026-09-29 + 3 days = Fri 10-02, inside National Day (10-01..10-07) -> Thu 10-08.
    assert deadline(local(2026, 9, 29, 10), "3d") == end_of(2026, 10, 8)
    # Sun 2026-09-20 and Sat 2026-10-10 are adjusted working days.
    assert deadline(local(2026, 9, 19, 10), "1d") == end_of(2026, 9, 20)
    assert deadline(local(2026, 9, 30, 10), "1wd") == end_of(2026, 10, 8)
    assert deadline(local(2026, 9, 30, 10), "3wd") == end_of(2026, 10, 10)


# --- hours ------------------------------------------------------------------------------

def test_hours_run_on_the_clock_over_spring_festival() -> None:
    start = local(2026, 2, 15, 10)  # first day of the holiday
    result = deadline(start, "24h")
    assert result == local(2026, 2, 16, 10)
    assert format_local(result) == "2026-02-16T10:00:00+08:00"
    assert_utc(result)
    assert deadline(local(2026, 2, 13, 18, 15), Period(72, "hours")) == local(2026, 2, 16, 18, 15)


def test_hours_keep_minutes_and_seconds() -> None:
    start = datetime(2026, 3, 1, 1, 2, 3, 456000, tzinfo=UTC)
    assert deadline(start, "2h") == start + timedelta(hours=2)


# --- minutes ----------------------------------------------------------------------------

def test_minutes_run_on_the_clock_over_spring_festival() -> None:
    start = local(2026, 2, 15, 23, 50, 30)  # a holiday, 10 minutes before midnight
    result = deadline(start, "30m")
    assert result == local(2026, 2, 16, 0, 20, 30)
    assert_utc(result)
    assert deadline(start, Period(10, "minutes")) == start + timedelta(minutes=10)
    assert deadline(start, "90 minutes") == deadline(start, "90m") == start + timedelta(hours=1.5)


def test_minutes_are_never_moved_to_a_working_day() -> None:
    saturday = local(2026, 3, 7, 9)  # ordinary rest day
    assert deadline(saturday, "10m") == local(2026, 3, 7, 9, 10)


def test_minutes_validate_like_other_units() -> None:
    with pytest.raises(ValueError, match="amount must be > 0"):
        Period.parse("0m")
    with pytest.raises(ValueError):
        Period(0, "minutes")
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        deadline(datetime(2026, 2, 12, 10), "30m")


# --- working days -----------------------------------------------------------------------

def test_one_working_day_after_friday_before_spring_festival_is_adjusted_saturday() -> None:
    assert deadline(local(2026, 2, 13, 16), "1wd") == end_of(2026, 2, 14)


def test_five_working_days_over_spring_festival() -> None:
    # 02-14 (Sat, adjusted), then 02-24, 25, 26, 27.
    assert deadline(local(2026, 2, 13, 16), Period(5, "working_days")) == end_of(2026, 2, 27)


def test_working_days_skip_ordinary_weekend() -> None:
    # Fri 2026-03-06 + 1 working day = Mon 2026-03-09.
    assert deadline(local(2026, 3, 6, 9), "1wd") == end_of(2026, 3, 9)


# --- working-day source and fallback ----------------------------------------------------

def test_is_working_day_uses_official_calendar() -> None:
    assert is_working_day(date(2026, 2, 14)) is True   # adjusted Saturday
    assert is_working_day(date(2026, 2, 28)) is True   # adjusted Saturday
    assert is_working_day(date(2026, 2, 16)) is False  # Spring Festival, a Monday
    assert is_working_day(date(2026, 2, 23)) is False  # Spring Festival, a Monday
    assert is_working_day(date(2026, 2, 24)) is True
    assert is_working_day(date(2026, 3, 7)) is False   # ordinary Saturday


def test_is_working_day_rejects_datetime() -> None:
    with pytest.raises(TypeError):
        is_working_day(datetime(2026, 2, 14, tzinfo=UTC))  # type: ignore[arg-type]


# Years beyond chinese-calendar (2027...), notice files, check: test_calendar_sources.py


# --- Period -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", Period(24, "hours")),
        ("3d", Period(3, "days")),
        ("5wd", Period(5, "working_days")),
        ("3 days", Period(3, "days")),
        ("24 hours", Period(24, "hours")),
        ("5 working_days", Period(5, "working_days")),
        ("5 working days", Period(5, "working_days")),
        ("1 day", Period(1, "days")),
        (" 7D ", Period(7, "days")),
        ("30m", Period(30, "minutes")),
        ("10 minutes", Period(10, "minutes")),
        ("1 minute", Period(1, "minutes")),
        ("15 min", Period(15, "minutes")),
    ],
)
def test_period_parse_good(text: str, expected: Period) -> None:
    assert Period.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "d", "3", "0d", "-3d", "3.5d", "3 weeks", "3dd", "wd5", "3 d x", "３d"]
)
def test_period_parse_bad_names_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid period") as exc:
        Period.parse(text)
    assert repr(text) in str(exc.value)


@pytest.mark.parametrize("text", ["30m", "24h", "3d", "5wd"])
def test_period_str_round_trips(text: str) -> None:
    assert str(Period.parse(text)) == text
    assert str(Period.parse(str(Period.parse(text)))) == text


def test_period_validates_fields() -> None:
    with pytest.raises(ValueError):
        Period(0, "days")
    with pytest.raises(ValueError):
        Period(-1, "hours")
    with pytest.raises(ValueError):
        Period(3, "weeks")
    with pytest.raises(TypeError):
        Period(True, "days")
    with pytest.raises(ValueError, match="invalid period"):
        deadline(local(2026, 3, 2), "three days")


def test_period_is_frozen() -> None:
    period = Period(3, "days")
    with pytest.raises(AttributeError):
        period.amount = 4  # type: ignore[misc]


# --- aware datetimes and helpers -------------------------------------------------------

@pytest.mark.parametrize("period", ["24h", "3d", "5wd"])
def test_naive_start_rejected(period: str) -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        deadline(datetime(2026, 2, 12, 10), period)


def test_to_local_and_format_local() -> None:
    utc = datetime(2026, 2, 24, 15, 59, 59, 999999, tzinfo=UTC)
    assert to_local(utc) == utc
    assert to_local(utc).utcoffset() == timedelta(hours=8)
    assert to_local(utc).hour == 23
    assert format_local(utc) == "2026-02-24T23:59:59+08:00"
    with pytest.raises(ValueError):
        format_local(datetime(2026, 2, 24))


def test_time_left_and_is_overdue() -> None:
    due = end_of(2026, 2, 24)
    before = local(2026, 2, 24, 23, 0)
    assert time_left(due, before) == timedelta(minutes=59, seconds=59)
    assert is_overdue(due, before) is False
    assert is_overdue(due, due) is False
    after = local(2026, 2, 25, 0, 0)
    assert time_left(due, after) == timedelta(seconds=-1)
    assert is_overdue(due, after) is True
    with pytest.raises(ValueError):
        is_overdue(due, datetime(2026, 2, 25))


# --- property ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, database=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1),
        max_value=datetime(2026, 12, 31, 23, 59, 59),
        timezones=st.sampled_from([TZ, UTC]),
    ),
    n=st.integers(min_value=1, max_value=30),
)
def test_days_deadline_is_first_working_day_on_or_after_start_plus_n(
    start: datetime, n: int
) -> None:
    result = deadline(start, Period(n, "days"))
    assert_utc(result)
    end_local = to_local(result)
    assert (end_local.hour, end_local.minute, end_local.second, end_local.microsecond) == (
        23, 59, 59, 0)
    last_day = end_local.date()
    earliest = to_local(start).date() + timedelta(days=n)
    assert is_working_day(last_day)
    assert last_day >= earliest
    day = earliest + timedelta(days=1)
    while day < last_day:
        assert not is_working_day(day), f"working day {day} skipped before {last_day}"
        day += timedelta(days=1)
    assert not (last_day > earliest and is_working_day(earliest))
