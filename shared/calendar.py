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

Working days come, for each year, from the first of these sources that has the year
(``year_calendar(year).source`` says which; ``liandong calendar`` shows it):

1. ``notice`` — the State Council General Office's yearly arrangement (放假调休安排) as
   data: ``contracts/calendar/<year>.yaml`` (rest days and adjusted working days with
   the notice's number; see contracts/calendar/README.md). It overrides any package.
2. ``chinese-calendar`` — the ``chinesecalendar`` package (official notices up to 2026
   in 1.11.0).
3. ``provisional`` — the ``holidays`` package: the statutory holidays of the State
   Council's rules on public holidays (as amended 2024) and their make-up days
   (补假) only; adjusted working days are unknown, so weekends stay rest days. A
   warning ``holiday_calendar_provisional_year`` is logged once per year.

Weekends-only is the last resort, should a year be outside every source.
``LIANDONG_CALENDAR_DIR`` names another folder of notice files (tests, drills).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path
from time import monotonic
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import structlog
import yaml

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


# ---------------------------------------------------------------------------- sources

NOTICE, PACKAGE, PROVISIONAL, WEEKENDS = ("notice", "chinese-calendar", "provisional",
                                          "weekends-only")
OFFICIAL = (NOTICE, PACKAGE)      # sources that include the year's adjusted working days
DEFAULT_CALENDAR_DIR = Path(__file__).resolve().parent.parent / "contracts" / "calendar"
PROVISIONAL_NOTE = "provisional (statutory holidays only, adjusted working days unknown)"


def calendar_dir() -> Path:
    """Where notice files are read: ``LIANDONG_CALENDAR_DIR`` or contracts/calendar."""
    return Path(os.environ.get("LIANDONG_CALENDAR_DIR") or DEFAULT_CALENDAR_DIR)


class CalendarFileError(ValueError):
    """A notice file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, path, problems: list[str]):
        self.path, self.problems = str(path), problems
        super().__init__(f"{path}: " + "; ".join(problems))


@dataclass(frozen=True)
class YearCalendar:
    """One year's working days: weekdays that are rest days (``rest``) and weekend days
    that are worked (``work``, 调休上班), with the source they come from."""

    year: int
    source: str
    reference: str
    rest: frozenset = frozenset()
    work: frozenset = frozenset()

    @property
    def official(self) -> bool:
        return self.source in OFFICIAL

    def is_working_day(self, d: date) -> bool:
        return d in self.work or (d.weekday() < 5 and d not in self.rest)

    def rest_days(self) -> list[date]:
        """Every rest day of the year (weekends and holidays), in order."""
        day, out = date(self.year, 1, 1), []
        while day.year == self.year:
            if not self.is_working_day(day):
                out.append(day)
            day += timedelta(days=1)
        return out

    def describe(self) -> dict:
        return {"year": self.year, "source": self.source, "reference": self.reference,
                "official": self.official,
                "note": None if self.official else PROVISIONAL_NOTE,
                "adjusted_working_days": sorted(d.isoformat() for d in self.work)}


def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory holidays of ``year`` under the rules on public holidays (as amended
    2024; from the ``holidays`` package): date -> name, make-up days left out."""
    found = holidays.China(years=year, observed=False)
    return {d: n for d, n in found.items() if d.year == year and not n.startswith("Day off")}


def _as_date(value, where: str, problems: list[str]) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def parse_notice(doc, where: str = "notice") -> tuple[YearCalendar | None, list[str]]:
    """A notice file's content as a YearCalendar, and every problem found in it:
    well-formed, dates in its year, adjusted working days on weekends and outside the
    rest days, every statutory holiday a rest day."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return None, ["expected a mapping with year, notice and holidays"]
    year, notice, entries = doc.get("year"), doc.get("notice"), doc.get("holidays")
    if isinstance(year, bool) or not isinstance(year, int) or not 1949 < year < 2200:
        return None, [f"year: {year!r} is not a year"]
    if not isinstance(notice, str) or not notice.strip():
        problems.append("notice: the notice's number is missing (e.g. 国办发明电〔2025〕7号)")
    if not isinstance(entries, list) or not entries:
        return None, problems + ["holidays: expected a list of holidays (name, rest, work)"]
    rest: dict[date, str] = {}
    work: dict[date, str] = {}
    for i, entry in enumerate(entries, 1):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"holidays[{i}] ({name})" if name else f"holidays[{i}]"
        if not isinstance(entry, dict) or not isinstance(name, str):
            problems.append(f"{label}: expected name, rest: [first, last] and work: [...]")
            continue
        span = entry.get("rest")
        if not isinstance(span, list) or len(span) != 2:
            problems.append(f"{label}: rest must be [first day, last day]")
            continue
        first, last = (_as_date(v, f"{label} rest", problems) for v in span)
        if first is None or last is None:
            continue
        if last < first:
            problems.append(f"{label}: rest ends ({last}) before it starts ({first})")
            continue
        day = first
        while day <= last:
            if day in rest:
                problems.append(f"{label}: {day} is already a rest day of {rest[day]}")
            rest[day] = name
            day += timedelta(days=1)
        extra = entry.get("work") or []
        if not isinstance(extra, list):
            problems.append(f"{label}: work must be a list of dates")
            continue
        for value in extra:
            d = _as_date(value, f"{label} work", problems)
            if d is not None:
                work[d] = name
    for d in sorted(set(rest) | set(work)):
        if d.year != year:
            problems.append(f"{d} is not in {year}")
    for d, name in sorted(work.items()):
        if d.weekday() < 5:
            problems.append(f"{name}: adjusted working day {d} is a "
                            f"{d.strftime('%A')}, not a weekend day")
        if d in rest:
            problems.append(f"{name}: {d} is both a rest day and an adjusted working day")
    for d, name in sorted(statutory_holidays(year).items()):
        if d not in rest:
            problems.append(f"statutory holiday {d} ({name}) is not a rest day")
    if problems:
        return None, problems
    return YearCalendar(year, NOTICE, notice.strip(),
                        frozenset(d for d in rest if d.weekday() < 5),
                        frozenset(work)), []


def read_notice(path: Path) -> YearCalendar:
    """Load and check one notice file; raise CalendarFileError with every problem."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalendarFileError(path, [exc.strerror or str(exc)]) from None
    except yaml.YAMLError as exc:
        raise CalendarFileError(path, [f"not YAML: {exc}"]) from None
    found, problems = parse_notice(doc)
    if found is not None and Path(path).stem != str(found.year):
        problems = [f"the file of {found.year} must be named {found.year}.yaml"]
    if problems:
        raise CalendarFileError(path, problems)
    return found


def _package_year(year: int) -> YearCalendar | None:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return None
    rest = {d for d in chinese_calendar.holidays if d.year == year and d.weekday() < 5}
    work = {d for d in chinese_calendar.workdays if d.year == year and d.weekday() >= 5}
    version = getattr(chinese_calendar, "__version__", "")
    return YearCalendar(year, PACKAGE, f"chinesecalendar {version}".strip(),
                        frozenset(rest), frozenset(work))


def _provisional_year(year: int) -> YearCalendar | None:
    try:
        found = holidays.China(years=year)
    except Exception:  # noqa: BLE001 - a year outside the package: weekends only
        return None
    rest = {d for d in found if d.year == year and d.weekday() < 5}
    work = {d for d in found.weekend_workdays if d.year == year}
    return YearCalendar(year, PROVISIONAL, f"holidays {holidays.__version__}",
                        frozenset(rest), frozenset(work))


RECHECK_SECONDS = 5.0          # how often a process looks for a changed notice file
_stamps: dict[int, tuple[float, tuple]] = {}


def _stamp(year: int) -> tuple:
    """The notice file's identity (path, mtime, size), looked at every few seconds: a
    file added or changed is picked up by every running process without a restart."""
    now_ = monotonic()
    hit = _stamps.get(year)
    if hit and now_ - hit[0] < RECHECK_SECONDS:
        return hit[1]
    path = calendar_dir() / f"{year}.yaml"
    try:
        st = path.stat()
        stamp = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (str(path), None, None)
    _stamps[year] = (now_, stamp)
    return stamp


def year_calendar(year: int) -> YearCalendar:
    """The calendar in force for ``year``: notice file > chinese-calendar > holidays
    package (provisional) > weekends only. The source is logged once per year."""
    return _year_calendar(year, _stamp(year))


@lru_cache(maxsize=64)
def _year_calendar(year: int, stamp: tuple) -> YearCalendar:
    log = structlog.get_logger(__name__)
    path = Path(stamp[0])
    found = None
    if stamp[1] is not None:
        try:
            found = read_notice(path)
        except CalendarFileError as exc:
            log.error("calendar_notice_invalid", year=year, path=str(path),
                      problems=exc.problems)
    found = found or _package_year(year) or _provisional_year(year) or YearCalendar(
        year, WEEKENDS, "Monday to Friday")
    if found.official:
        log.info("holiday_calendar_year", year=year, source=found.source,
                 reference=found.reference)
    else:
        log.warning("holiday_calendar_provisional_year", year=year, source=found.source,
                    reference=found.reference, note=PROVISIONAL_NOTE)
    return found


def is_working_day(d: date) -> bool:
    """True if ``d`` is a working day in mainland China (holidays and 调休 included)."""
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"is_working_day expects a date, got {d!r}; use to_local(dt).date()")
    return _is_working_day(d, _stamp(d.year))


@lru_cache(maxsize=4096)
def _is_working_day(d: date, stamp: tuple) -> bool:
    return _year_calendar(d.year, stamp).is_working_day(d)


def clear_caches() -> None:
    """Forget the years' calendars and cached answers (tests; ``recompute_deadlines``
    after a notice file was added: no need to wait for the next look at the files)."""
    _is_working_day.cache_clear()
    _year_calendar.cache_clear()
    _stamps.clear()


WARN_FROM = (11, 1)   # from 1 November, next year's missing arrangement is reported


def status(at: datetime | None = None) -> dict:
    """This year's and next year's sources, and which of the years that matter now
    (this year; next year from 1 November) have no official arrangement."""
    today = to_local(at or now()).date()
    years = [year_calendar(y).describe() for y in (today.year, today.year + 1)]
    watched = [today.year] + ([today.year + 1] if (today.month, today.day) >= WARN_FROM
                              else [])
    provisional = [y["year"] for y in years if y["year"] in watched and not y["official"]]
    return {"today": today.isoformat(), "years": years, "provisional_years": provisional,
            "warning": (f"no official holiday arrangement for {', '.join(map(str, provisional))}"
                        f": deadlines use the {PROVISIONAL_NOTE} calendar; add "
                        "contracts/calendar/<year>.yaml when the notice is published"
                        if provisional else None)}


# ------------------------------------------------------------------------------ clock

_CLOCK_ENV = "LIANDONG_CLOCK"


@cache
def _clock_offset() -> timedelta:
    """A test clock: ``LIANDONG_CLOCK`` (ISO datetime) is when the process starts, and
    time runs on from there. Honoured only in development (LIANDONG_ENV=development)."""
    raw = os.environ.get(_CLOCK_ENV)
    if not raw:
        return timedelta(0)
    if os.environ.get("LIANDONG_ENV") != "development":
        structlog.get_logger(__name__).error("test_clock_refused", variable=_CLOCK_ENV,
                                             reason="only with LIANDONG_ENV=development")
        return timedelta(0)
    start = datetime.fromisoformat(raw)
    if start.tzinfo is None:
        start = start.replace(tzinfo=TZ)
    return start - datetime.now(UTC)


def now() -> datetime:
    """The current time (aware, UTC); a development test clock may shift it."""
    return datetime.now(UTC) + _clock_offset()


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
