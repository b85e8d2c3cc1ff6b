"""Legal deadline calendar: periods counted the way Chinese law counts them.

All datetimes are timezone-aware, stored in UTC and shown in Asia/Shanghai.
Calendar days are always *local* (Asia/Shanghai) days, whatever zone the input is in.

The rule, in short: 期间开始的当日不计算在内；期间届满的最后一日是法定节假日的，
以节假日后的第一日为届满日。 (民法典第二百零一条、第二百零三条；民事诉讼法第八十五条)

* The start day is not counted: a 3-day period starting on the 12th has the 15th as its
  last day.
* If the last day is not a working day (statutory holiday or weekend rest day), the period
  ends on the first working day after it. Adjusted working days (调休上班日, e.g. Saturday
  2026-02-14) are working days.
* A period ends at the end (二十四时) of its last day; we use 23:59:59 local time.

Period units:

* ``minutes`` ("30m", "10 minutes"): on the clock, holidays ignored (e.g. a command
  centre's 30-minute acknowledgement of a joint action).
* ``hours`` ("24h"): on the clock, holidays ignored.
* ``days`` ("3d"): calendar days, last day moved forward to the next working day.
* ``working_days`` ("5wd"): ends with the Nth working day after the start day, for
  periods the law states in working days (e.g. 行政处罚法第八十五条: its 三日/五日/七日 are 工作日).

Working days come from ``chinese_calendar`` (official holidays and adjusted working days).
For years it has no data for, Monday-Friday is assumed and a warning
``holiday_calendar_missing_year`` is logged once per year.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar
import structlog

TZ = ZoneInfo("Asia/Shanghai")
UNITS = ("minutes", "hours", "days", "working_days")

_SHORT = {"minutes": "m", "hours": "h", "days": "d", "working_days": "wd"}
_UNIT_ALIASES = {
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes",
    "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "wd": "working_days", "working_day": "working_days", "working_days": "working_days",
}
_PERIOD_RE = re.compile(r"^\s*(\d+)\s*([a-z_ ]+?)\s*$", re.IGNORECASE | re.ASCII)
_END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class Period:
    """A legal period: ``amount`` of ``unit`` ("minutes", "hours", "days" or
    "working_days")."""

    amount: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown period unit {self.unit!r}; expected one of {UNITS}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"period amount must be an int, got {self.amount!r}")
        if self.amount <= 0:
            raise ValueError(f"period amount must be > 0, got {self.amount}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse "30m", "24h", "3d", "5wd", "10 minutes", "3 days", "24 hours" or
        "5 working_days"."""
        match = _PERIOD_RE.match(text) if isinstance(text, str) else None
        unit = None
        if match:
            unit = _UNIT_ALIASES.get(re.sub(r"\s+", "_", match.group(2).lower()))
        if unit is None:
            raise ValueError(
                f"invalid period {text!r}: expected e.g. '30m', '24h', '3d', '5wd', '3 days'")
        amount = int(match.group(1))
        if amount <= 0:
            raise ValueError(f"invalid period {text!r}: amount must be > 0")
        return cls(amount, unit)

    def __str__(self) -> str:
        return f"{self.amount}{_SHORT[self.unit]}"


@cache
def _warn_missing_year(year: int) -> None:
    """Log the missing-holiday-data warning; cached so it happens once per year."""
    structlog.get_logger(__name__).warning("holiday_calendar_missing_year", year=year)


@lru_cache(maxsize=4096)
def is_working_day(d: date) -> bool:
    """True if ``d`` is a working day in mainland China (holidays and 调休 included)."""
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"is_working_day expects a date, got {d!r}; use to_local(dt).date()")
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        _warn_missing_year(d.year)
        return d.weekday() < 5


def clear_caches() -> None:
    """Forget cached working-day answers and which missing years were already warned."""
    is_working_day.cache_clear()
    _warn_missing_year.cache_clear()


def _require_aware(dt: datetime, name: str = "start") -> None:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {dt!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _end_of_local_day(d: date) -> datetime:
    """23:59:59 Asia/Shanghai on ``d``, in UTC."""
    return datetime.combine(d, _END_OF_DAY, tzinfo=TZ).astimezone(UTC)


def deadline(start: datetime, period: Period | str) -> datetime:
    """When a period starting at ``start`` expires, as an aware UTC datetime."""
    _require_aware(start)
    if isinstance(period, str):
        period = Period.parse(period)
    n = period.amount
    if period.unit == "minutes":
        return start.astimezone(UTC) + timedelta(minutes=n)
    if period.unit == "hours":
        return start.astimezone(UTC) + timedelta(hours=n)

    day = to_local(start).date()
    if period.unit == "days":
        day += timedelta(days=n)
        while not is_working_day(day):
            day += timedelta(days=1)
    else:  # working_days
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if is_working_day(day):
                counted += 1
    return _end_of_local_day(day)


def to_local(dt: datetime) -> datetime:
    """``dt`` converted to Asia/Shanghai."""
    _require_aware(dt, "dt")
    return dt.astimezone(TZ)


def format_local(dt: datetime) -> str:
    """ISO 8601 in Asia/Shanghai with seconds precision, e.g. '2026-02-24T23:59:59+08:00'."""
    return to_local(dt).isoformat(timespec="seconds")


def time_left(deadline: datetime, now: datetime) -> timedelta:
    """Time remaining until ``deadline`` (negative once overdue)."""
    _require_aware(deadline, "deadline")
    _require_aware(now, "now")
    return deadline - now


def is_overdue(deadline: datetime, now: datetime) -> bool:
    """True once ``now`` is strictly after ``deadline``."""
    return time_left(deadline, now) < timedelta(0)
